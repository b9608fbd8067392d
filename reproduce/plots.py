"""Loss-drop, overview and decision-boundary figures of an experiment.

`plot_experiment(experiment_dir)` reads the completed runs under the folder
(curves from their event files, boundaries from their saved models: nothing
is retrained) and writes, beside the runs:

    figures/loss_drop/<dataset>/<group>.png  one configuration, every seed: batch loss
                                             raw and smoothed, validation loss per epoch
    figures/overview.png                     datasets x activations: mean smoothed batch loss
    figures/overlay_<dataset>.png            the activations of one dataset on one axes
    figures/boundary_<dataset>.png           decision boundaries of a 2-D dataset
    figures/events.out.tfevents.*            the same images for TensorBoard's Images tab

From the command line: `reproduce plot logs/article`.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import functools
import os
import struct
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from callbacks import tags
from reproduce import events, runs, workers
from reproduce.config import ACTIVATIONS, DATASETS, TWO_D_DATASETS, RunConfig
from reproduce.errors import DataError, ReproduceError, RunNotFoundError
from reproduce.figures import (  # noqa: F401 - the figure layout, re-exported
    BOUNDARY_FILE, FIGURES_DIR, LOSS_DROP_DIR, OVERLAY_FILE, OVERVIEW_FILE, loss_drop_path,
    overview_path, plt, save)

SMOOTHING = 0.6  # TensorBoard's default smoothing weight
GRID_POINTS = 200  # per axis of the decision-boundary grid
GRID_MARGIN = 0.5  # standardised units added around the data on each side
LOG_Y_RATIO = 20  # an overlay gets a log y axis when its curves span more than this factor
TRAIN_COLOR = "tab:blue"
VALIDATION_COLOR = "tab:orange"
DIVERGED_COLOR = "tab:red"
# One colour per configuration in overlays and overview cells; red is kept for diverged runs.
PALETTE = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown",
           "tab:pink", "tab:gray", "tab:olive", "tab:cyan")


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


def plot_loss_drop(group: GroupCurves, path: Path) -> Path:
    """Draws one configuration's loss against optimizer step, as TensorBoard shows it.

    Each seed's batch loss is drawn faint, the mean smoothed curve bold with a
    min-max band, and each seed's validation loss at the end of every epoch.
    Diverged seeds are drawn dashed red and labelled.

    Returns:
        `path`, the PNG written.
    """
    figure, axes = _single_axes(top=0.8)  # the title and the epoch axis above
    for curves in group.runs:
        if curves.diverged:
            train_color, validation_color = DIVERGED_COLOR, DIVERGED_COLOR
            train_label = "_nolegend_"  # `_draw_mean` labels its smoothed curve
            validation_label = f"{curves.divergence_label}: validation loss"
        else:
            train_color, validation_color = TRAIN_COLOR, VALIDATION_COLOR
            train_label = _first(axes, "batch loss (each seed)")
            validation_label = _first(axes, "validation loss (each seed, per epoch)")
        axes.plot(curves.steps, curves.batch_loss, color=train_color, alpha=0.25, lw=0.8,
                  label=train_label)
        axes.plot(curves.validation_steps, curves.validation_loss, "o-", ms=3, lw=1,
                  color=validation_color, label=validation_label)
    _draw_mean(axes, group, TRAIN_COLOR,
               f"batch loss smoothed ({group.weight:g}): mean and min–max over seeds")
    steps_per_epoch = group.runs[0].steps_per_epoch
    epochs = axes.secondary_xaxis("top", functions=(lambda step: step / steps_per_epoch,
                                                    lambda epoch: epoch * steps_per_epoch))
    epochs.set_xlabel("epoch")
    axes.set(xlabel="optimizer step", ylabel="loss")
    # Above the epoch axis, placed by hand: matplotlib would measure that axis's texts.
    axes_height = axes.get_position().height * figure.get_figheight()
    axes.set_title(group.title, y=1 + 0.47 / axes_height)
    axes.set_ylim(0, _top([group], raw=True))
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right", fontsize="small")
    return save(figure, path)


def plot_overview(groups: list[GroupCurves], path: Path) -> Path:
    """Draws a datasets x activations grid of each configuration's mean smoothed batch loss.

    Rows share their axes, so the activations of one dataset compare at a glance.

    Returns:
        `path`, the PNG written.
    """
    dataset_names = list(dict.fromkeys(group.config.dataset for group in groups))
    activations = sorted({group.config.activation for group in groups},
                         key=ACTIVATIONS.index)
    rows, columns = len(dataset_names), len(activations)
    width, height = 3.2 * columns, 2.4 * rows
    figure, grid = plt.subplots(rows, columns, squeeze=False, sharex="row", sharey="row",
                                figsize=(width, height))
    # Fixed margins in inches (constrained layout measured every text first, ~40% of the
    # time): a two-line y label left, the titles above, tick labels below every row.
    left, right, bottom, top, gap_x, gap_y = 0.85, 0.1, 0.5, 0.55, 0.2, 0.45
    figure.subplots_adjust(
        left=left / width, right=1 - right / width, bottom=bottom / height,
        top=1 - top / height,
        wspace=gap_x * columns / (width - left - right - gap_x * (columns - 1)),
        hspace=gap_y * rows / (height - bottom - top - gap_y * (rows - 1)))
    for row, dataset in enumerate(dataset_names):
        row_groups = [group for group in groups if group.config.dataset == dataset]
        for column, activation in enumerate(activations):
            axes = grid[row, column]
            cell = [group for group in row_groups if group.config.activation == activation]
            for color, group in zip(PALETTE, cell):
                _draw_mean(axes, group, color, group.label)
            if len(cell) > 1 or any(curves.diverged for group in cell for curves in group.runs):
                axes.legend(fontsize="x-small")
            axes.grid(alpha=0.3)
            if row == 0:
                axes.set_title(activation)
            if column == 0:
                axes.set_ylabel(f"{dataset}\nbatch loss")
            if row == len(dataset_names) - 1:
                axes.set_xlabel("optimizer step")
        grid[row, 0].set_ylim(0, _top(row_groups))
    figure.suptitle(f"Batch loss smoothed ({groups[0].weight:g}), mean and min–max over seeds",
                    y=1 - 0.1 / height, va="top")
    return save(figure, path)


def plot_overlay(groups: list[GroupCurves], path: Path) -> Path:
    """Draws the configurations of one dataset on one axes, one colour each.

    The y axis is logarithmic when the curves span more than `LOG_Y_RATIO`,
    so a plateau near 0.3 and a drop to 0.01 are both readable.

    Returns:
        `path`, the PNG written.
    """
    figure, axes = _single_axes(top=0.4)
    for color, group in zip(PALETTE, groups):
        _draw_mean(axes, group, color, group.label)
    means = _concatenate([group.mean for group in groups if group.mean is not None])
    positive = means[means > 0]
    if len(positive) and positive.max() / positive.min() > LOG_Y_RATIO:
        axes.set_yscale("log")
    else:
        axes.set_ylim(0, _top(groups))
    axes.set(xlabel="optimizer step", ylabel="batch loss",
             title=f"{groups[0].config.dataset}: batch loss smoothed ({groups[0].weight:g}), "
                   "mean and min–max over seeds")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize="small")
    return save(figure, path)


@dataclasses.dataclass(frozen=True)
class BoundaryPanel:
    """What one panel of a decision-boundary figure shows: plain arrays, drawn in any process."""

    title: str
    x_val: np.ndarray  # validation points, standardised, (n, 2)
    y_val: np.ndarray  # their classes, (n,)
    low: np.ndarray  # the grid's lower corner, (2,)
    high: np.ndarray  # its upper corner, (2,)
    probability: np.ndarray | None  # P(class 1) over the GRID_POINTS² grid, or None
    message: str = ""  # shown instead of the surface when there is none


def boundary_panel(group: GroupCurves, models: dict | None = None) -> BoundaryPanel:
    """Computes a configuration's panel from its lowest seed: its saved model over a grid.

    Warns, and returns a panel saying why, when the data cannot be rebuilt
    as they were or the model cannot be read. `models` is passed on to
    `runs.load_model` as `reuse`.
    """
    curves = group.runs[0]
    accuracy = curves.run.final.get("val_accuracy", float("nan"))
    status = ", diverged" if curves.diverged else ""
    title = (f"{group.label}, seed {curves.config.seed}{status}\n"
             f"validation accuracy {accuracy:.3f}")
    try:
        dataset = curves.run.load_data()
    except DataError as error:  # cannot be built here, or differs from what it trained on
        warnings.warn(f"no decision boundary for run {curves.run.path}: {error}", stacklevel=2)
        empty = np.zeros((0, 2))
        return BoundaryPanel(f"{group.label}, seed {curves.config.seed}", empty, empty[:, 0],
                             np.zeros(2), np.ones(2), None, "data differ: no boundary")
    x = np.concatenate([dataset.x_train, dataset.x_val])
    low, high = x.min(axis=0) - GRID_MARGIN, x.max(axis=0) + GRID_MARGIN
    first, second = _grid(low, high)
    points = np.stack([first.ravel(), second.ravel()], axis=1).astype(np.float32)
    message = ""
    try:
        model = curves.run.load_model(reuse=models)
        probability = np.asarray(model(points, training=False), np.float64).reshape(first.shape)
        if not np.isfinite(probability).all():
            probability, message = None, "diverged: no boundary"
    except ReproduceError as error:
        warnings.warn(f"no decision boundary for run {curves.run.path}: {error}", stacklevel=2)
        probability, message = None, "model unreadable: no boundary"
    return BoundaryPanel(title, dataset.x_val, dataset.y_val.ravel(), low, high, probability,
                         message)


def plot_decision_boundaries(panels: list[BoundaryPanel], dataset: str, path: Path) -> Path:
    """Draws each configuration's decision boundary on a 2-D dataset, one panel each.

    Each panel (`boundary_panel`) shows a saved model's probability of class
    1 over a grid of the standardised input space, the 0.5 contour, and the
    validation points of its data regenerated from its config.

    Returns:
        `path`, the PNG written.
    """
    width, height = 3.8 * len(panels) + 0.9, 4  # 0.9 in for the colour bar
    figure, grid = plt.subplots(1, len(panels), squeeze=False, figsize=(width, height))
    # Fixed margins in inches (a layout engine measures every text first, at about the
    # cost of drawing): titles of two lines above, axis labels left of each panel.
    figure.subplots_adjust(left=0.65 / width, right=1 - 1.15 / width, bottom=0.55 / height,
                           top=1 - 0.8 / height, wspace=0.7 / 3.1)
    surfaces = [_draw_boundary(axes, panel) for axes, panel in zip(grid[0], panels)]
    drawn = [surface for surface in surfaces if surface is not None]
    if drawn:
        bar = figure.add_axes((1 - 0.95 / width, 0.55 / height + 0.1, 0.15 / width,
                               1 - (0.55 + 0.8) / height - 0.2))
        figure.colorbar(drawn[0], cax=bar, label="P(class 1)")
    figure.suptitle(f"{dataset}: decision boundary (P = 0.5), validation points")
    return save(figure, path)


def _grid(low: np.ndarray, high: np.ndarray):
    return np.meshgrid(np.linspace(low[0], high[0], GRID_POINTS),
                       np.linspace(low[1], high[1], GRID_POINTS))


def _draw_boundary(axes, panel: BoundaryPanel):
    low, high, probability = panel.low, panel.high, panel.probability
    surface = None
    if probability is None:
        axes.text(0.5, 0.5, panel.message, transform=axes.transAxes, ha="center",
                  color=DIVERGED_COLOR)
    else:
        # A raster, not contourf: filled contour paths take seconds to render.
        surface = axes.imshow(probability, extent=(low[0], high[0], low[1], high[1]),
                              origin="lower", aspect="auto", cmap="RdBu_r", vmin=0, vmax=1,
                              alpha=0.45, interpolation="bilinear")
        if probability.min() < 0.5 < probability.max():
            axes.contour(*_grid(low, high), probability, levels=[0.5], colors="black",
                         linewidths=2)
        else:
            # A linear model's line can lie beyond the data; say so rather than show nothing.
            axes.text(0.5, 0.03, f"P = 0.5 is outside this view (P {probability.min():.2f}"
                      f" to {probability.max():.2f})", transform=axes.transAxes, ha="center",
                      fontsize="small", bbox={"facecolor": "white", "alpha": 0.8})
    axes.set_title(panel.title, fontsize="medium")
    if len(panel.x_val):
        axes.scatter(panel.x_val[:, 0], panel.x_val[:, 1], c=panel.y_val, cmap="RdBu_r",
                     vmin=0, vmax=1, s=12, edgecolors="black", linewidths=0.4)
        axes.set(xlabel="x1 (standardised)", ylabel="x2 (standardised)",
                 xlim=(low[0], high[0]), ylim=(low[1], high[1]))
    return surface


def _single_axes(top: float):
    """An 8 x 4.5 in figure with one axes and fixed margins (`top` in inches).

    Fixed, because a layout engine measures every text first and so costs
    about as much as drawing the figure.
    """
    width, height = 8, 4.5
    figure, axes = plt.subplots(figsize=(width, height))
    figure.subplots_adjust(left=0.8 / width, right=1 - 0.15 / width, bottom=0.55 / height,
                           top=1 - top / height)
    return figure, axes


def _draw_mean(axes, group: GroupCurves, color: str, label: str) -> None:
    if group.mean is not None:
        axes.fill_between(group.steps, group.low, group.high, color=color, alpha=0.25, lw=0)
        axes.plot(group.steps, group.mean, color=color, lw=2, label=label)
    for curves in group.runs:
        if curves.diverged:
            axes.plot(curves.steps, curves.smoothed, color=DIVERGED_COLOR, ls="--", lw=1.2,
                      label=f"{group.label} {curves.divergence_label}")


def _first(axes, label: str) -> str:
    # One legend entry per kind of line, however many seeds draw it.
    return "_nolegend_" if label in axes.get_legend_handles_labels()[1] else label


def _top(groups: list[GroupCurves], raw: bool = False) -> float | None:
    # Scaled to the runs that did not diverge, so a diverged run's blow-up cannot
    # squash the curves that matter; None (autoscale) when every run diverged.
    values = [group.high for group in groups if group.high is not None]
    if raw:
        values += [curves.batch_loss for group in groups for curves in group.runs
                   if not curves.diverged]
        values += [curves.validation_loss for group in groups for curves in group.runs
                   if not curves.diverged]
    values = _concatenate(values)
    values = values[np.isfinite(values)]
    return 1.05 * values.max() if len(values) else None


def _concatenate(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros(0)


def figure_tag(png: Path, figures_dir: Path) -> str:
    """Returns the image tag of a figure: its path under `figures_dir` without `.png`."""
    return png.relative_to(figures_dir).with_suffix("").as_posix()


def write_image_summaries(pngs: list[Path], figures_dir: Path) -> None:
    """Writes each PNG as an image summary at step 0 into the event folder `figures_dir`.

    Older event files there are deleted first, so plotting again replaces the
    images in TensorBoard instead of adding a second copy of each.
    """
    from callbacks.event_writer import EventWriter

    for old in events.event_files(figures_dir):
        old.unlink()
    writer = EventWriter(figures_dir)
    for png in pngs:
        writer.write_summary(0, image_summary(figure_tag(png, figures_dir), png.read_bytes()))
    writer.close()


def image_summary(tag: str, png: bytes):
    """A TensorBoard image summary of one PNG, as `tf.summary.image` writes it.

    The tensor is TensorBoard's image layout: width, height, then the encoded image.
    """
    from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorboard.plugins.image import metadata as image_metadata

    width, height = struct.unpack(">II", png[16:24])  # the PNG's IHDR chunk
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=3)]),
        string_val=[str(width).encode(), str(height).encode(), png])
    metadata = image_metadata.create_summary_metadata(display_name=None, description=None)
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(
        tag=tag, metadata=metadata, tensor=tensor)])


def plot_experiment(experiment_dir: Path, jobs: int | None = None,
                    finished: list[runs.Run] | None = None, meanwhile=None) -> list[Path]:
    """Writes every figure of an experiment into `<experiment_dir>/figures`.

    The figures are drawn in `jobs` worker processes (default: one per core)
    while this process reads the runs' events (a configuration's loss-drop
    figure is drawn as soon as its runs are read) and computes the decision
    boundaries, which need the saved models.

    Args:
        experiment_dir: a folder of run folders, e.g. `logs/article`.
        jobs: worker processes drawing the figures; 1 draws everything here.
        finished: its completed and diverged runs, when the caller has loaded
            them; their events are then kept on them for its later use.
        meanwhile: a function of no argument, called in this process while
            the workers draw (e.g. the report's measurements).

    Returns:
        Every PNG written: the overview, the loss-drop figures, the overlays, then
        the decision boundaries.

    Raises:
        RunNotFoundError: the folder does not exist or holds no completed run.
    """
    experiment_dir = Path(experiment_dir)
    figures_dir = experiment_dir / FIGURES_DIR
    keep_events = finished is not None
    if finished is None:
        finished = runs.load_runs(experiment_dir)
    jobs = jobs or os.cpu_count() or 1
    with contextlib.ExitStack() as stack:
        if jobs == 1:
            submit = _draw_here
        else:
            submit = stack.enter_context(concurrent.futures.ProcessPoolExecutor(
                jobs, mp_context=workers.context(workers.FIGURE_IMPORTS),
                initializer=workers.follow, initargs=workers.state())).submit
        loss_drops = {}  # each configuration's figure drawn while the next ones' runs are read
        for group in iter_loss_curves(finished, SMOOTHING, keep_events):
            loss_drops[group.name] = (group, submit(plot_loss_drop, group,
                                                    experiment_dir / loss_drop_path(group.name)))
        groups = sorted_groups(group for group, _ in loss_drops.values())
        by_dataset: dict[str, list[GroupCurves]] = {}
        for group in groups:
            by_dataset.setdefault(group.config.dataset, []).append(group)
        futures = [submit(plot_overview, groups, experiment_dir / overview_path()),
                   *(loss_drops[group.name][1] for group in groups)]
        futures += [submit(plot_overlay, members,
                           figures_dir / OVERLAY_FILE.format(dataset=dataset))
                    for dataset, members in by_dataset.items()]
        models = {}  # one model per structure, reloaded for each panel
        for dataset, members in by_dataset.items():
            if dataset in TWO_D_DATASETS:  # the panels are computed here: TensorFlow
                futures.append(submit(plot_decision_boundaries,
                                      [boundary_panel(group, models) for group in members],
                                      dataset, figures_dir / BOUNDARY_FILE.format(dataset=dataset)))
        if meanwhile:
            meanwhile()
        written = [future.result() for future in futures]
    write_image_summaries(written, figures_dir)
    return written


def _draw_here(plot, *args) -> concurrent.futures.Future:
    """Draws in this process; the figure's path as a done future, as a pool would give it."""
    future = concurrent.futures.Future()
    future.set_result(plot(*args))
    return future
