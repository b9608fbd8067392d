"""Beyond the article (`make beyond`): Saxe et al.'s deep linear dynamics (C6) and Glorot &
Bengio's saturation (C7), each an experiment of its own with its figures and report.

    reproduce beyond [--logdir DIR] [--jobs N]

The runs of both experiments are trained in one sweep, so that each worker
process starts TensorFlow once; then each experiment gets its TensorBoard
summaries, figures and report.
"""

from __future__ import annotations

import dataclasses
import time
from importlib import resources
from pathlib import Path

from reproduce import execution, runs
from reproduce.config import RunConfig
from reproduce.execution import Sweep, format_duration, load_sweep

# Shipped in reproduce/sweeps/: C6's two initial scales, then C7.
SWEEP_FILES = ("saxe_small_init.toml", "saxe.toml", "glorot_bengio.toml")


def beyond_sweeps() -> list[Sweep]:
    """The experiments' sweeps, read from the files shipped in the package."""
    folder = resources.files("reproduce.sweeps")
    return [load_sweep(Path(str(folder.joinpath(name)))) for name in SWEEP_FILES]


@dataclasses.dataclass(frozen=True)
class _Together(Sweep):
    """Several sweeps as one: their configurations, trained by one pool of workers."""

    parts: tuple[Sweep, ...] = ()

    def configs(self) -> list[RunConfig]:
        return [config for part in self.parts for config in part.configs()]


def run_beyond(logdir, jobs: int | None = None, sweeps: list[Sweep] | None = None,
               ray=None) -> list[Path]:
    """Trains the experiments' runs (skipping completed ones), then their figures and reports.

    Prints the sweep's progress, then each experiment's figure and report
    times and where its report, figures and logs are, then the total time.

    Args:
        logdir: the log root; each experiment goes to `<logdir>/<experiment>`.
        jobs: worker processes (default: `execution.default_jobs()`).
        ray: `ray_pool.RayOptions` to train the runs on Ray instead.
        sweeps: the sweeps to run instead of the packaged ones (tests run tiny ones).

    Returns:
        The experiment folders.
    """
    from reproduce.experiments.article import import_analysis
    from reproduce.figures.beyond import plot_beyond
    from reproduce.report import write_report
    from reproduce.report.context import Context
    from reproduce.tensorboard.summaries import write_experiment_summaries

    start = time.perf_counter()
    sweeps = sweeps or beyond_sweeps()
    together = _Together("beyond", {}, {}, tuple(sweeps))
    summary = execution.run_all(together, logdir, jobs=jobs, on_core_idle=import_analysis,
                                ray=ray)
    print(summary.describe(), flush=True)
    trained = time.perf_counter()
    by_experiment: dict[str, list[RunConfig]] = {}
    for config in together.configs():
        by_experiment.setdefault(config.experiment, []).append(config)
    roots = [runs.experiment_dir(logdir, experiment) for experiment in by_experiment]
    if not summary.chief:
        return roots
    for root, configs in zip(roots, by_experiment.values()):
        with runs.write_lock(root, wait=True):  # one process at a time writes them
            figures_start = time.perf_counter()
            write_experiment_summaries(root, configs)
            context = Context.load(root)
            figures = plot_beyond(root, context)
            report_start = time.perf_counter()
            report_paths = write_report(root, context)
            end = time.perf_counter()
        print(f"\n{root.name}: figures {format_duration(report_start - figures_start)}, "
              f"report {format_duration(end - report_start)}\n"
              f"Report:  {report_paths[0]}  (and {report_paths[1].name})\n"
              f"Figures: {root / 'figures'}  ({len(figures)} PNGs)\n"
              f"Logs:    {root}", flush=True)
    print(f"\nTimes: sweep {format_duration(trained - start)}, figures and reports "
          f"{format_duration(time.perf_counter() - trained)}, total "
          f"{format_duration(time.perf_counter() - start)}\n"
          f"Open them with: reproduce tensorboard {Path(logdir)}", flush=True)
    return roots
