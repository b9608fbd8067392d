"""The article reproduction, end to end: sweep, figures, report (`make reproduce`)."""

from __future__ import annotations

import time
from pathlib import Path

from reproduce import runs
from reproduce import sweep as sweep_module
from reproduce.sweep import Sweep, SweepSummary, format_duration


def run_sweep(sweep: Sweep, logdir, jobs: int | None = None) -> SweepSummary:
    """Runs `sweep` and writes the experiment-level TensorBoard summaries (HParams, layout)."""
    from reproduce.tensorboard import write_experiment_summaries

    summary = sweep_module.run_all(sweep, logdir, jobs=jobs)
    print(summary.describe(), flush=True)
    if summary.chief:  # another sweep of the same experiment may be writing them too
        with runs.write_lock(summary.experiment_dir, wait=True):
            write_experiment_summaries(summary.experiment_dir, sweep.configs())
    return summary


def run_article(logdir, jobs: int | None = None, sweep: Sweep | None = None) -> Path:
    """Runs the article sweep (skipping completed runs), then its figures and report.

    Returns:
        The experiment folder.
    """
    from reproduce.plots import plot_experiment
    from reproduce.report import write_report
    from reproduce.tensorboard import build_command

    start = time.perf_counter()
    sweep = sweep or sweep_module.load_sweep()
    summary = run_sweep(sweep, logdir, jobs)
    root = summary.experiment_dir
    if not summary.chief:
        return root  # the chief writes the figures and the report
    with runs.write_lock(root, wait=True):  # one process at a time writes them
        figures_start = time.perf_counter()
        figures = plot_experiment(root)
        report_start = time.perf_counter()
        report_paths = write_report(root)
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
