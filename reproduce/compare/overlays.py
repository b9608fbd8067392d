"""The comparison's figures: each tag's histograms of every run overlaid, and the norms.

    <tag>.png    e.g. gradients__dense_1__kernel.png: the runs' histograms
                 overlaid, one row per step, as TensorBoard's offset view
    norms.png    each tag's norm scalar (and the global gradient norm)
                 against step, one line per run
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator

from callbacks import tags as tag_names
from reproduce.compare.table import norm_tag
from reproduce.figures.base import plt, save
from reproduce.runs import events

if TYPE_CHECKING:
    from reproduce.compare.comparison import Comparison

NORMS_FILE = "norms.png"
ROW_HEIGHT = 1.0  # ridgeline: peak height of a curve; rows are 1 apart, so peaks touch
FILL_MAX_RUNS = 6  # more overlaid runs than this are drawn as lines only, to stay legible
MAX_LEGEND_RUNS = 12  # a ridgeline of more runs leaves the legend to norms.png (same colours)
LEGEND_ROWS = 25  # legend entries per column
LEGEND_COLUMN_INCHES = 2.2  # width of a legend column beside the norm panels
LOG_Y_RATIO = 100  # a norm panel gets a log y axis when its values span more than this


def plot_comparison(comparison: Comparison, train_events: dict[Path, events.EventData],
                    out_dir: Path) -> list[Path]:
    """Writes one ridgeline PNG per compared tag and `norms.png`; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    colour_of = dict(zip(comparison.labels, _run_colours(len(comparison.labels))))
    by_label = dict(zip(comparison.labels, train_events.values()))
    paths = []
    for tag in comparison.tags:
        rows = [row for row in comparison.rows if row.tag == tag]
        paths.append(_plot_ridgeline(comparison.steps, tag, rows, by_label, colour_of,
                                     out_dir / (tag.replace("/", "__") + ".png")))
    paths.append(_plot_norms(comparison, by_label, colour_of, out_dir / NORMS_FILE))
    return paths


def _run_colours(count: int) -> list:
    if count <= 10:
        return list(plt.get_cmap("tab10").colors[:count])
    return [plt.get_cmap("viridis")(index / (count - 1)) for index in range(count)]


def _legend(axes, colour_of: dict, **options) -> None:
    # Proxy lines: the curves are line collections, which carry no label each.
    handles = [Line2D([], [], color=colour, lw=1.5) for colour in colour_of.values()]
    axes.legend(handles, list(colour_of), fontsize="x-small",
                ncol=math.ceil(len(handles) / LEGEND_ROWS), **options)


def _plot_ridgeline(steps, tag, rows, by_label, colour_of, path: Path) -> Path:
    """Each compared step is a row, first step on top; each run's histogram drawn in its colour.

    Every curve is scaled to its own peak, so the figure compares location and
    spread; the table holds the magnitudes.
    """
    figure, axes = plt.subplots(figsize=(8, 1.5 + 1.1 * len(steps)))
    curves, colours = [], []
    for row in rows:
        histograms = by_label[row.run].histograms[tag]
        for index, step in enumerate(row.steps):
            x, height = _outline(histograms.at(step))
            baseline = len(steps) - 1 - index
            curves.append(np.column_stack([x, baseline + height]))
            colours.append(colour_of[row.run])
            if len(rows) <= FILL_MAX_RUNS:
                axes.fill_between(x, baseline, baseline + height, color=colour_of[row.run],
                                  alpha=0.2, lw=0)
    # One collection draws hundreds of curves far faster than one artist each.
    axes.add_collection(LineCollection(curves, colors=colours, linewidths=1))
    axes.autoscale_view()
    axes.set_yticks(range(len(steps)), [f"step {step}" for step in reversed(steps)])
    axes.set_ylim(-0.1, len(steps) - 1 + 1.4 * ROW_HEIGHT)  # headroom for the legend
    axes.set_xlabel(tag)
    axes.set_title(f"{tag}: {len(rows)} runs, each curve scaled to its peak")
    if len(rows) <= MAX_LEGEND_RUNS:
        _legend(axes, {row.run: colour_of[row.run] for row in rows}, loc="upper right")
    return save(figure, path)


def _outline(buckets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The histogram's density as a closed step outline, scaled to a peak of ROW_HEIGHT."""
    lefts, rights, counts = buckets[:, 0], buckets[:, 1], buckets[:, 2]
    widths = rights - lefts
    if not len(buckets) or not np.any(widths > 0):
        # Constant data (left == right) or nothing: a spike at the value.
        value = float(lefts[0]) if len(buckets) else 0.0
        return np.array([value, value]), np.array([0.0, ROW_HEIGHT])
    varied = widths > 0  # zero-width buckets only occur in constant histograms
    density = counts[varied] / widths[varied]
    peak = density.max() or 1.0
    x = np.concatenate([[lefts[varied][0]],
                        np.column_stack([lefts[varied], rights[varied]]).ravel(),
                        [rights[varied][-1]]])
    height = np.concatenate([[0.0], np.repeat(density / peak * ROW_HEIGHT, 2), [0.0]])
    return x, height


def _plot_norms(comparison, by_label, colour_of, path: Path) -> Path:
    """One panel per norm scalar (each compared tag's, then the global gradient norm)."""
    panels = [norm for tag in comparison.tags if (norm := norm_tag(tag))]
    panels.append(tag_names.GLOBAL_GRADIENT_NORM)
    panels = [tag for tag in dict.fromkeys(panels)
              if any(tag in data.scalars for data in by_label.values())]
    columns = min(3, max(1, len(panels)))
    grid_rows = max(1, math.ceil(len(panels) / columns))
    legend_width = LEGEND_COLUMN_INCHES * math.ceil(len(colour_of) / LEGEND_ROWS)
    width = 4.5 * columns + legend_width
    figure, grid = plt.subplots(grid_rows, columns, figsize=(width, 3 * grid_rows),
                                squeeze=False)
    # Fixed margins: tight and constrained layouts measure every tick label, which
    # took longer than drawing.
    figure.subplots_adjust(left=0.5 / width, right=1 - (legend_width + 0.2) / width,
                           bottom=0.6 / (3 * grid_rows), top=1 - 0.35 / (3 * grid_rows),
                           hspace=0.45, wspace=0.25)
    for axes, tag in zip(grid.ravel(), panels):
        series = {label: data.scalars[tag] for label, data in by_label.items()
                  if tag in data.scalars}
        axes.add_collection(LineCollection(
            [np.column_stack([scalars.steps, scalars.values]) for scalars in series.values()],
            colors=[colour_of[label] for label in series], linewidths=1))
        axes.autoscale_view()
        for step in comparison.steps:
            axes.axvline(step, color="0.7", lw=0.8, ls="--")
        values = np.concatenate([scalars.values for scalars in series.values()])
        positive = values[np.isfinite(values) & (values > 0)]
        if len(positive) and positive.max() > LOG_Y_RATIO * positive.min():
            axes.set_yscale("log")
            axes.set_ylim(positive.min() / 1.5, positive.max() * 1.5)
            # Minor log ticks are hundreds of artists and most of the drawing time.
            axes.yaxis.set_minor_locator(NullLocator())
        axes.set_title(tag, fontsize="small")
        axes.set_xlabel("step")
    for axes in grid.ravel()[len(panels):]:
        axes.set_visible(False)
    _legend(figure, colour_of, loc="upper right")
    return save(figure, path)
