"""Pure measurements on logged series and histograms: numbers in, numbers out.

`measure_loss_drop` is C1's measure of a loss curve (C3 reads its relative
decrease too); `derivative_figures` is C2's reading of one run's
`activation_derivative` histograms.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from callbacks import tags
from reproduce.runs import events

EARLY_FRACTION = 0.1  # "at first": the first 10% of optimizer steps
FINAL_FRACTION = 0.1  # the final level is the mean batch loss over the last 10% of steps
LATE_FRACTION = 0.5  # "then stabilises": the last 50% of steps
LEVEL_HALF_WINDOW = 0.02  # a level mid-curve is the mean over ±2% of the steps (batch noise)
MIN_RELATIVE_DECREASE = 0.05  # a loss that falls by less than 5% of its start did not drop
SLOPE_RATIO_CAP = 1000.0  # a flat or rising late phase reports this ratio


@dataclasses.dataclass(frozen=True)
class LossDrop:
    """How a loss curve falls: levels and the shares of its total decrease."""

    steps: int
    initial: float  # the first batch's loss (initial weights)
    early_level: float  # the level after the first EARLY_FRACTION of steps
    final_level: float  # the mean over the last FINAL_FRACTION of steps
    relative_decrease: float  # (initial - final) / initial
    early_share: float  # share of the total decrease reached in the first 10% of steps
    late_share: float  # share of it happening over the last 50% of steps
    slope_ratio: float  # early mean slope / late fitted slope, capped at SLOPE_RATIO_CAP


def measure_loss_drop(values) -> LossDrop:
    """Measures how fast a per-step loss curve falls.

    The initial value is the first batch's loss; the final level the mean of
    the last 10% of steps; a level mid-curve the mean over a window of ±2% of
    the steps around it, which averages the batch-to-batch noise away.

    Args:
        values: the loss at each optimizer step, in step order.

    Returns:
        A `LossDrop`. When the loss falls by less than MIN_RELATIVE_DECREASE of
        its initial value both shares are 0: there is no decrease to share out.

    Raises:
        ValueError: fewer than 2 steps.

    Example:

    ```python
    drop = measure_loss_drop(1 + np.exp(-np.arange(1000) / 20))
    drop.early_share  # about 0.99: nearly all of the decrease in the first 100 steps
    ```
    """
    values = np.asarray(values, np.float64)
    n = len(values)
    if n < 2:
        raise ValueError(f"a loss curve needs at least 2 steps, got {n}")
    half_window = round(LEVEL_HALF_WINDOW * n)

    def level(index: int) -> float:
        return float(values[max(0, index - half_window):index + half_window + 1].mean())

    early_end = max(1, round(EARLY_FRACTION * n))
    late_start = n - max(1, round(LATE_FRACTION * n))
    initial = float(values[0])
    early_level = level(early_end)  # value k is the loss after k updates
    final_level = float(values[-max(1, round(FINAL_FRACTION * n)):].mean())
    decrease = initial - final_level
    early_share = late_share = 0.0
    if decrease >= MIN_RELATIVE_DECREASE * abs(initial):  # else rounding noise gets shared out
        early_share = (initial - early_level) / decrease
        late_share = (level(late_start) - final_level) / decrease
    early_slope = (initial - early_level) / early_end
    late_slope = -np.polyfit(np.arange(late_start, n), values[late_start:], 1)[0]
    if early_slope <= 0:
        slope_ratio = 0.0
    elif late_slope * SLOPE_RATIO_CAP <= early_slope:  # flat or rising late phase
        slope_ratio = SLOPE_RATIO_CAP
    else:
        slope_ratio = early_slope / late_slope
    return LossDrop(
        steps=n, initial=initial, early_level=early_level, final_level=final_level,
        relative_decrease=decrease / initial if initial else 0.0,
        early_share=early_share, late_share=late_share, slope_ratio=float(slope_ratio),
    )


@dataclasses.dataclass(frozen=True)
class DerivativeFigures:
    """C2's figures of one run (or an activation's runs) from its f′ histograms."""

    histograms: int  # histograms read: every layer at every logged step
    mass_at_one_min: float  # smallest share of a histogram's mass exactly at `value`
    mass_at_one_mean: float
    top_bucket_mean: float  # mean share in buckets whose right edge is `value`
    derivative_min: float  # lowest left edge holding data
    derivative_max: float  # highest right edge holding data
    dead_fraction_mean: float | None  # mean of the `dead_fraction/*` scalars
    saturated_fraction_mean: float | None  # mean of the `saturated_fraction/*` scalars


def derivative_figures(train: events.EventData, value: float) -> DerivativeFigures | None:
    """Reads the `activation_derivative/act_i` histograms of one run's `train/` events.

    Args:
        train: the run's training events.
        value: the derivative to look for (1.0 for the identity).

    Returns:
        The figures, or None when no derivative histogram was logged.
    """
    histograms = {name: data for name, data in train.histograms.items()
                  if name.startswith(tags.ACTIVATION_DERIVATIVE + "/")}
    if not histograms:
        return None
    exact, top, lows, highs = [], [], [], []
    for data in histograms.values():
        for buckets in data.buckets:
            exact.append(events.mass_at(buckets, value))
            top.append(events.mass_in_top_bucket(buckets, value))
            low, high = events.histogram_range(buckets)
            lows.append(low)
            highs.append(high)

    def mean_of(kind):
        values = [data.values for name, data in train.scalars.items()
                  if name.startswith(kind + "/")]
        return float(np.mean(np.concatenate(values))) if values else None

    return DerivativeFigures(
        histograms=len(exact), mass_at_one_min=min(exact),
        mass_at_one_mean=float(np.mean(exact)), top_bucket_mean=float(np.mean(top)),
        derivative_min=float(np.nanmin(lows)), derivative_max=float(np.nanmax(highs)),
        dead_fraction_mean=mean_of(tags.DEAD_FRACTION),
        saturated_fraction_mean=mean_of(tags.SATURATED_FRACTION))


def mean_or_none(values) -> float | None:
    """The mean of the values that are not None; None when there are none."""
    values = [value for value in values if value is not None]
    return float(np.mean(values)) if values else None
