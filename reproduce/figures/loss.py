"""The loss figures: one configuration's loss drop, the overview grid, one dataset's overlay."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reproduce.config import ACTIVATIONS
from reproduce.figures.base import (
    DIVERGED_COLOR, PALETTE, TRAIN_COLOR, VALIDATION_COLOR, plt, save)
from reproduce.figures.curves import GroupCurves

LOG_Y_RATIO = 20  # an overlay gets a log y axis when its curves span more than this factor


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
