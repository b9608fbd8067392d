"""The article reproduction, end to end: sweep, figures, report (`make reproduce`)."""

from __future__ import annotations

import time
from pathlib import Path

from reproduce import execution, runs
from reproduce.execution import Sweep, SweepSummary, format_duration


def run_sweep(sweep: Sweep, logdir, jobs: int | None = None,
              on_core_idle=None, ray=None) -> SweepSummary:
    """Runs `sweep` and writes the experiment-level TensorBoard summaries (HParams, layout).

    `on_core_idle`, `ray`: see `execution.run_all`; by default `on_core_idle` imports what the
    summaries need.
    """
    summary = execution.run_all(sweep, logdir, jobs=jobs,
                                on_core_idle=on_core_idle or import_summaries, ray=ray)
    from reproduce.tensorboard.summaries import write_experiment_summaries

    print(summary.describe(), flush=True)
    if summary.chief:  # another sweep of the same experiment may be writing them too
        with runs.write_lock(summary.experiment_dir, wait=True):
            write_experiment_summaries(summary.experiment_dir, sweep.configs())
    return summary


def import_summaries() -> None:
    """Imports what the experiment summaries use (TensorFlow takes ~9 s of CPU here).

    Meant for a core the sweep leaves idle; a failure is left for the summaries to raise.
    """
    try:
        import callbacks.event_writer  # noqa: F401
    except Exception:  # noqa: BLE001 - imported again, and reported, where used
        pass


def import_analysis() -> None:
    """Imports what the figures and reports use, the summaries' imports among them.

    Meant for a core the sweep leaves idle; a failure is left for the analysis to raise.
    """
    try:
        import keras  # noqa: F401
        import sklearn.linear_model  # noqa: F401

        import callbacks.event_writer  # noqa: F401
        import reproduce.figures.article  # noqa: F401
        import reproduce.figures.beyond  # noqa: F401
        import reproduce.report  # noqa: F401
        import reproduce.tensorboard.summaries  # noqa: F401
    except Exception:  # noqa: BLE001 - imported again, and reported, where used
        pass


def run_article(logdir, jobs: int | None = None, sweep: Sweep | None = None,
                ray=None) -> Path:
    """Runs the article sweep (skipping completed runs), then its figures and report.

    `ray`: `ray_pool.RayOptions` to train the runs on Ray instead of local workers.

    Returns:
        The experiment folder.
    """
    from reproduce.figures.article import plot_experiment
    from reproduce.report import write_report
    from reproduce.report.context import Context
    from reproduce.tensorboard.launcher import build_command

    start = time.perf_counter()
    sweep = sweep or execution.load_sweep()
    summary = run_sweep(sweep, logdir, jobs, on_core_idle=import_analysis, ray=ray)
    root = summary.experiment_dir
    if not summary.chief:
        return root  # the chief writes the figures and the report
    with runs.write_lock(root, wait=True):  # one process at a time writes them
        figures_start = time.perf_counter()
        context = Context.load(root)  # each run's events read once, for figures and report
        figures = plot_experiment(root, finished=[run for run in context.all_runs
                                                  if run.finished], meanwhile=context.measure)
        report_start = time.perf_counter()
        report_paths = write_report(root, context)
        end = time.perf_counter()
    print(
        f"\nTimes: sweep {format_duration(figures_start - start)}, figures "
        f"{format_duration(report_start - figures_start)}, report "
        f"{format_duration(end - report_start)}, total {format_duration(end - start)}\n"
        f"Report:  {report_paths[0]}  (and {report_paths[1].name})\n"
        f"Figures: {root / 'figures'}  ({len(figures)} PNGs)\n"
        f"Logs:    {root}\n"
        f"Open them with: tensorboard {' '.join(build_command(root)[3:])}\n"
        f"           or: reproduce tensorboard {root}   (make tensorboard opens logs/)"
    )
    return root
