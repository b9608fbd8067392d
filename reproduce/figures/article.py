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

import concurrent.futures
import contextlib
import os
from pathlib import Path

from reproduce import runs
from reproduce.config import TWO_D_DATASETS
from reproduce.execution import workers
from reproduce.figures.base import (
    BOUNDARY_FILE, FIGURES_DIR, OVERLAY_FILE, loss_drop_path, overview_path)
from reproduce.figures.boundaries import boundary_panel, plot_decision_boundaries
from reproduce.figures.curves import SMOOTHING, GroupCurves, iter_loss_curves, sorted_groups
from reproduce.figures.loss import plot_loss_drop, plot_overlay, plot_overview
from reproduce.tensorboard.summaries import write_image_summaries


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
        for dataset, members in by_dataset.items():
            if dataset in TWO_D_DATASETS:  # the panels are computed here: TensorFlow
                futures.append(submit(plot_decision_boundaries,
                                      [boundary_panel(group) for group in members],
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
