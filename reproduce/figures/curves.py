"""The loss curves of finished runs, read from their event files and grouped by configuration.

`load_loss_curves(runs)` gives each configuration (every seed of it) its runs'
batch and validation losses on the optimizer-step axis, smoothed as
TensorBoard smooths them, and their mean smoothed curve with a min-max band.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import warnings
from collections.abc import Iterable, Iterator

import numpy as np

from callbacks import tags
from reproduce import runs
from reproduce.config import ACTIVATIONS, DATASETS, RunConfig
from reproduce.errors import ReproduceError, RunNotFoundError

SMOOTHING = 0.6  # TensorBoard's default smoothing weight


@dataclasses.dataclass(frozen=True)
class RunCurves:
    """The loss curves of one finished run on the optimizer-step axis."""

    run: runs.Run
    steps_per_epoch: float  # from the marker
    steps: np.ndarray  # optimizer step of each batch loss
    batch_loss: np.ndarray  # true loss of each batch
    smoothed: np.ndarray  # `smooth(batch_loss)`
    validation_steps: np.ndarray  # optimizer step at the end of each epoch
    validation_loss: np.ndarray

    @property
    def config(self) -> RunConfig:
        return self.run.config

    @property
    def diverged(self) -> bool:
        return self.run.status is runs.RunStatus.DIVERGED

    @property
    def divergence_label(self) -> str:
        """`seed S diverged`, with the step when the run recorded it."""
        at = self.run.marker.diverged_at_step
        step = f" at step {at}" if at is not None else ""
        return f"seed {self.config.seed} diverged{step}"


@dataclasses.dataclass(frozen=True)
class GroupCurves:
    """The runs of one configuration (every seed) and their mean smoothed batch loss.

    The mean and its min-max band cover the seeds that did not diverge, at the
    steps all of them logged; they are None when every seed diverged.
    """

    name: str  # runs.group_name, e.g. "moons/linear-d4-w32"
    runs: list[RunCurves]  # by seed
    weight: float  # smoothing weight of every `smoothed` curve
    steps: np.ndarray | None
    mean: np.ndarray | None
    low: np.ndarray | None
    high: np.ndarray | None

    @property
    def config(self) -> RunConfig:
        """The config of the lowest seed."""
        return self.runs[0].config

    @property
    def label(self) -> str:
        """The configuration without its dataset, e.g. `linear (d4-w32)`."""
        activation = self.config.activation
        configuration = self.name.split("/", 1)[1].removeprefix(f"{activation}-")
        return f"{activation} ({configuration})"

    @property
    def title(self) -> str:
        """E.g. `moons / linear (d4-w32), 3 seeds`."""
        count = len(self.runs)
        return f"{self.config.dataset} / {self.label}, {count} seed{'s' * (count != 1)}"


def smooth(values, weight: float = SMOOTHING) -> np.ndarray:
    """Smooths a series exactly as TensorBoard's scalar chart does.

    An exponential moving average started at 0 and divided by `1 - weight**n`
    (n = finite values seen so far) so that early values are not pulled
    towards 0; NaN and infinite values pass through without updating it.

    Args:
        values: the series, in step order.
        weight: the smoothing weight in [0, 1]; 0 returns the values unchanged.

    Returns:
        A float64 array of the same length.

    Example:
        >>> smooth([1.0, 2.0], 0.5)  # [0.5 / 0.5, 1.25 / 0.75]
        array([1.        , 1.66666667])
    """
    # tensorflow/tensorboard: tensorboard/webapp/widgets/line_chart_v2/data_transformer.ts
    # (classicSmoothing), as in components/vz_line_chart2/line-chart.ts (resmoothDataset).
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0 or np.all(values == values[0]):
        return values.copy()  # TensorBoard leaves constant series alone (its issue #786)
    smoothed = values.copy()
    last, count = 0.0, 0
    for index, value in enumerate(values):
        if not np.isfinite(value):
            continue
        last = last * weight + (1 - weight) * value
        count += 1
        smoothed[index] = last / (1 - weight**count) if weight != 1 else last
    return smoothed


def load_run_curves(run: runs.Run, weight: float = SMOOTHING,
                    keep_events: bool = False) -> RunCurves:
    """Reads the batch and validation loss of a finished run.

    The events read are kept on `run` (`run.events`) with `keep_events`, for
    a caller that reads them again (the report); otherwise dropped.

    Raises:
        RunNotFoundError: the run logged no batch loss, or its marker lacks its steps.
    """
    steps_per_epoch = run.marker.epoch_steps
    if steps_per_epoch is None:
        raise RunNotFoundError(f"unreadable {run.path / runs.MARKER_FILE}: "
                               f"neither steps_per_epoch nor steps and epochs")
    run_events = run.events if keep_events else run.read_events()
    if tags.BATCH_LOSS not in run_events.train.scalars:
        raise RunNotFoundError(
            f"run {run.path} has no {tags.BATCH_LOSS!r} scalar in {runs.TRAIN_DIR}/")
    batch = run_events.train.scalars[tags.BATCH_LOSS]
    validation = run_events.validation.scalars.get(tags.EPOCH_LOSS)
    epochs = validation.steps if validation is not None else np.zeros(0, np.int64)
    return RunCurves(
        run=run,
        steps_per_epoch=steps_per_epoch,
        steps=batch.steps,
        batch_loss=batch.values,
        smoothed=smooth(batch.values, weight),
        # Keras logs epoch e's validation at step e, once epoch e's batches are done.
        validation_steps=(epochs + 1) * steps_per_epoch,
        validation_loss=validation.values if validation is not None else np.zeros(0),
    )


def load_loss_curves(finished: Iterable[runs.Run], weight: float = SMOOTHING,
                     keep_events: bool = False) -> dict[str, GroupCurves]:
    """Reads the loss curves of completed runs, grouped by configuration.

    Args:
        finished: completed or diverged runs (`runs.load_runs`).
        weight: smoothing weight of `smooth`.
        keep_events: keep each run's events on it (see `load_run_curves`).

    Returns:
        `runs.group_name` -> `GroupCurves`, ordered by dataset and activation
        as `config.DATASETS` and `config.ACTIVATIONS` list them. A run that
        cannot be read is left out with a warning.

    Raises:
        RunNotFoundError: no run could be read.
    """
    return {group.name: group
            for group in sorted_groups(iter_loss_curves(finished, weight, keep_events))}


def sorted_groups(groups: Iterable[GroupCurves]) -> list[GroupCurves]:
    """`groups` in the order of `config.DATASETS`, then of `config.ACTIVATIONS`."""
    return sorted(groups, key=lambda group: (DATASETS.index(group.config.dataset),
                                             ACTIVATIONS.index(group.config.activation),
                                             group.name))


def iter_loss_curves(finished: Iterable[runs.Run], weight: float = SMOOTHING,
                     keep_events: bool = False) -> Iterator[GroupCurves]:
    """`load_loss_curves`'s groups, each yielded as soon as its last run is read.

    Raises:
        RunNotFoundError: no run could be read (once every run was tried).
    """
    finished = list(finished)
    unread = collections.Counter(run.group for run in finished)
    by_group: dict[str, list[RunCurves]] = {}
    for run in finished:
        try:
            by_group.setdefault(run.group, []).append(load_run_curves(run, weight, keep_events))
        except ReproduceError as error:
            warnings.warn(f"skipping run {run.path}: {error}", stacklevel=2)
        unread[run.group] -= 1
        if not unread[run.group] and run.group in by_group:
            yield _summarise_group(run.group, by_group[run.group], weight)
    if not by_group:
        raise RunNotFoundError(f"none of the {len(finished)} runs could be read")


def _summarise_group(name: str, members: list[RunCurves], weight: float) -> GroupCurves:
    members = sorted(members, key=lambda curves: curves.config.seed)
    finished = [curves for curves in members if not curves.diverged]
    if not finished:
        return GroupCurves(name, members, weight, None, None, None, None)
    steps = functools.reduce(np.intersect1d, (curves.steps for curves in finished))
    stacked = np.stack([_values_at(curves.steps, curves.smoothed, steps) for curves in finished])
    return GroupCurves(name, members, weight, steps, stacked.mean(axis=0), stacked.min(axis=0),
                       stacked.max(axis=0))


def _values_at(steps: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    # The last value written at each wanted step, as events.Scalars.at picks it.
    return values[np.searchsorted(steps, wanted, side="right") - 1]
