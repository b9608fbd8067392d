"""Decision-boundary figures of the 2-D datasets: each configuration's saved model over a grid."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np

from reproduce.errors import DataError, ReproduceError
from reproduce.figures.base import DIVERGED_COLOR, plt, save
from reproduce.figures.curves import GroupCurves

GRID_POINTS = 200  # per axis of the decision-boundary grid
GRID_MARGIN = 0.5  # standardised units added around the data on each side


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


def boundary_panel(group: GroupCurves) -> BoundaryPanel:
    """Computes a configuration's panel from its lowest seed: its saved model over a grid.

    Warns, and returns a panel saying why, when the data cannot be rebuilt
    as they were or the model cannot be read.
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
        model = curves.run.load_model()
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
