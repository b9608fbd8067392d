"""The figures of the experiments beyond the article: C6's mode dynamics, C7's saturation.

They draw what the report measured (`report.context.Context`: `mode_runs`,
`saturation_runs`), so a figure and the report's numbers cannot disagree.
`plot_beyond(experiment_dir)` draws the figures of whichever of the two
experiments the folder holds, into `<experiment_dir>/figures`, and writes
them as TensorBoard images too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reproduce.figures.base import FIGURES_DIR, plt, save
from reproduce.report.mode_dynamics import ModeRun, analytic_strength
from reproduce.report.saturation import SATURATING, SaturationRun
from reproduce.runs import events

MODE_STRENGTHS_FILE = "mode_strengths_{activation}.png"
PLATEAUS_FILE = "plateau_by_depth.png"
ACTIVATIONS_FILE = "activations_over_training.png"
GRADIENTS_FILE = "backprop_gradients_at_step_0.png"
INITIALIZER_LABELS = {"standard": "standard U[−1/√n, 1/√n]", "glorot_uniform": "normalized"}


def plot_beyond(experiment_dir: str | Path, context=None) -> list[Path]:
    """Draws the figures of the experiment in `experiment_dir` (`saxe` or `glorot_bengio`).

    Args:
        experiment_dir: the experiment folder.
        context: its `report.context.Context`, when already loaded.

    Returns:
        The PNGs written (none for an experiment with neither kind of run).

    Raises:
        RunNotFoundError: the folder does not exist or holds no completed run.
    """
    from reproduce.report.context import Context
    from reproduce.tensorboard.summaries import write_image_summaries

    experiment_dir = Path(experiment_dir)
    context = context or Context.load(experiment_dir)
    figures_dir = experiment_dir / FIGURES_DIR
    written = []
    mode_runs = [item for item in context.mode_runs.values() if isinstance(item, ModeRun)]
    if mode_runs:
        for activation in sorted({item.activation for item in mode_runs}):
            written.append(plot_mode_strengths(
                [item for item in mode_runs if item.activation == activation],
                figures_dir / MODE_STRENGTHS_FILE.format(activation=activation)))
        written.append(plot_plateaus(mode_runs, figures_dir / PLATEAUS_FILE))
    saturation = [item for item in context.saturation_runs.values()
                  if isinstance(item, SaturationRun)]
    if saturation:
        written.append(plot_activations(saturation, figures_dir / ACTIVATIONS_FILE))
        histograms = {run.name: run.events.train for run in context.usable
                      if run.name in context.saturation_runs}
        written.append(plot_gradients_at_start(saturation, histograms,
                                               figures_dir / GRADIENTS_FILE))
    if written:
        write_image_summaries(written, figures_dir)
    return written


def plot_mode_strengths(mode_runs: list[ModeRun], path: Path) -> Path:
    """u_α(t) of every run, one panel per (initial scale, depth), one colour per mode.

    One-hidden-layer runs with an analytic fit get the analytic curves, dashed.
    """
    scales = sorted({item.init_scale for item in mode_runs})
    depths = sorted({item.depth for item in mode_runs})
    figure, grid = plt.subplots(len(scales), len(depths), squeeze=False, sharex=True,
                                figsize=(3.2 * len(depths), 2.8 * len(scales)))
    colours = plt.get_cmap("viridis")
    drawn = {(scales.index(item.init_scale), depths.index(item.depth)) for item in mode_runs}
    for row, column in np.ndindex(grid.shape):
        if (row, column) not in drawn:  # e.g. depths run at one scale only
            grid[row][column].axis("off")
    for item in mode_runs:
        axes = grid[scales.index(item.init_scale)][depths.index(item.depth)]
        for index, mode in enumerate(item.modes):
            colour = colours(index / max(1, len(item.modes) - 1))
            axes.plot(item.steps, item.values[:, index], color=colour, lw=1.5,
                      label=f"s = {mode.strength:g}")
            if mode.initial is not None:  # black over the colour, or they hide each other
                axes.plot(item.steps, analytic_strength(item.steps, mode.strength, mode.initial,
                                                        item.tau),
                          color="black", lw=0.9, ls="--", zorder=3,
                          label="analytic" if index == 0 else None)
        axes.set_title(f"{item.activation}, depth {item.depth}, σ = {item.init_scale:g}",
                       fontsize=9)
        axes.grid(alpha=0.3)
    for row, column in drawn:
        axes = grid[row][column]
        axes.tick_params(labelbottom=True)  # shared x: a panel above an empty one needs its own
        if row == len(scales) - 1 or (row + 1, column) not in drawn:
            axes.set_xlabel("optimizer step")
    for row in grid:
        row[0].set_ylabel("mode strength uᵀWv")
    grid[0][0].legend(fontsize=7, loc="center right")
    fitted = any(item.analytic for item in mode_runs)
    figure.suptitle(f"Mode strengths ({mode_runs[0].activation})" + (
        "; black dashes: the analytic curves of Saxe et al. (one hidden layer, linear)"
        if fitted else ""), fontsize=10)
    figure.tight_layout()
    return save(figure, path)


def plot_plateaus(mode_runs: list[ModeRun], path: Path) -> Path:
    """Plateau length (t_half of the strongest mode) by depth, per activation and scale.

    A net still on its plateau when the budget ended is drawn at the budget, as an arrow up.
    """
    figure, axes = plt.subplots(figsize=(6, 4))
    groups: dict[tuple, list[ModeRun]] = {}
    for item in mode_runs:
        groups.setdefault((item.activation, item.init_scale), []).append(item)
    for (activation, scale), members in sorted(groups.items()):
        members.sort(key=lambda item: item.depth)
        depths = [item.depth for item in members]
        lengths = [item.plateau if item.plateau is not None else item.budget for item in members]
        line, = axes.plot(depths, lengths, marker="o", ls="-" if activation == "linear" else ":",
                          label=f"{activation}, σ = {scale:g}")
        beyond = [(item.depth, item.budget) for item in members if item.plateau is None]
        if beyond:
            axes.plot(*zip(*beyond), ls="none", marker="^", ms=10, color=line.get_color())
    axes.set_yscale("log")
    axes.set_xticks(sorted({item.depth for item in mode_runs}))
    axes.set_xlabel("hidden layers")
    axes.set_ylabel("plateau: steps until s_max/2")
    axes.set_title("Plateau length by depth (▲: still on the plateau at the budget)", fontsize=10)
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize=8)
    figure.tight_layout()
    return save(figure, path)


def _saturation_grid(saturation: list[SaturationRun]):
    activations = [name for name in SATURATING if any(item.activation == name
                                                      for item in saturation)]
    initializers = sorted({item.initializer for item in saturation},
                          key=lambda name: (name != "standard", name))
    figure, grid = plt.subplots(len(activations), len(initializers), squeeze=False,
                                figsize=(5 * len(initializers), 3 * len(activations)))
    cells = {(item.activation, item.initializer): item for item in saturation}
    panels = []
    for row, activation in enumerate(activations):
        for column, initializer in enumerate(initializers):
            axes = grid[row][column]
            axes.set_title(f"{activation}, {INITIALIZER_LABELS.get(initializer, initializer)}",
                           fontsize=9)
            item = cells.get((activation, initializer))
            if item is None:
                axes.axis("off")
            else:
                panels.append((axes, item))
    return figure, grid, panels


def plot_activations(saturation: list[SaturationRun], path: Path) -> Path:
    """Each hidden layer's mean activation over training, ± its std (the paper's Fig. 2)."""
    figure, grid, panels = _saturation_grid(saturation)
    colours = plt.get_cmap("plasma")
    for axes, item in panels:
        for index, (means, stds) in enumerate(zip(item.activation_mean, item.activation_std)):
            colour = colours(index / max(1, item.depth))
            means, stds = np.asarray(means), np.asarray(stds)
            axes.plot(item.steps, means, color=colour, label=f"layer {index + 1}")
            axes.fill_between(item.steps, means - stds, means + stds, color=colour, alpha=0.12)
        axes.grid(alpha=0.3)
        axes.set_xlabel("optimizer step")
        axes.set_ylabel("activation mean ± std")
    panels[0][0].legend(fontsize=7)
    figure.suptitle("Activations per hidden layer over training (probe batch)", fontsize=10)
    figure.tight_layout()
    return save(figure, path)


def plot_gradients_at_start(saturation: list[SaturationRun],
                            histograms: dict[str, events.EventData], path: Path) -> Path:
    """Per-layer histograms of the back-propagated gradient at step 0 (the paper's Fig. 7)."""
    from callbacks import tags
    from reproduce.network import activation_name

    figure, grid, panels = _saturation_grid(saturation)
    colours = plt.get_cmap("plasma")
    for axes, item in panels:
        train = histograms[item.run]
        for index in range(item.depth):
            tag = tags.tag(tags.BACKPROP_GRADIENTS, activation_name(index + 1))
            buckets = np.asarray(train.histograms[tag].buckets[0])
            widths = buckets[:, 1] - buckets[:, 0]
            if not np.any(widths > 0):
                continue
            varied = buckets[widths > 0]
            density = varied[:, 2] / (varied[:, 1] - varied[:, 0]) / varied[:, 2].sum()
            centres = (varied[:, 0] + varied[:, 1]) / 2
            axes.plot(centres, density, color=colours(index / max(1, item.depth)),
                      label=f"layer {index + 1} (std {item.backprop_std[index]:.2g})")
        axes.set_yscale("log")
        axes.ticklabel_format(axis="x", style="sci", scilimits=(-2, 2))
        axes.set_xlabel("dLoss/df(z) at step 0")
        axes.set_ylabel("density")
        axes.legend(fontsize=6)
        axes.grid(alpha=0.3)
    figure.suptitle("Back-propagated gradients per hidden layer at initialisation", fontsize=10)
    figure.tight_layout()
    return save(figure, path)
