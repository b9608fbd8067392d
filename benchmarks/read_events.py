"""Times reading a whole experiment's event files and comparing every run in it.

Reads every run under the experiment folder with `runs.read_experiment`,
then compares all runs' gradient histograms (`compare.build_comparison`) and
writes the comparison figures into a temporary folder (or `--out`). Prints the
wall time of each phase and the events read per second. The goal is at most
10 s for the default experiment (75 runs) on 2 cores.

    python benchmarks/read_events.py [EXPERIMENT_DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from reproduce import compare, runs

DEFAULT_EXPERIMENT_DIR = Path("logs/article")
GOAL_SECONDS = 10.0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment_dir", nargs="?", type=Path, default=DEFAULT_EXPERIMENT_DIR)
    parser.add_argument("--out", type=Path, default=None,
                        help="figure folder (default: a temporary folder, deleted afterwards)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    experiment = runs.read_experiment(args.experiment_dir)
    read_seconds = time.perf_counter() - start
    event_count = sum(run.train.event_count + run.validation.event_count
                      for run in experiment.values())

    start = time.perf_counter()
    train_events = {run_dir: run.train for run_dir, run in experiment.items()}
    comparison = compare.build_comparison(train_events)
    with tempfile.TemporaryDirectory() as scratch:
        figures = compare.plot_comparison(comparison, train_events, args.out or Path(scratch))
    compare_seconds = time.perf_counter() - start

    total = read_seconds + compare_seconds
    print(f"{args.experiment_dir}: {len(experiment)} runs, {event_count} events, "
          f"{len(comparison.rows)} table rows, {len(figures)} figures")
    print(f"reading    {read_seconds:6.2f} s  ({event_count / read_seconds:,.0f} events/s)")
    print(f"comparing  {compare_seconds:6.2f} s")
    print(f"total      {total:6.2f} s  (goal for 75 runs: {GOAL_SECONDS:g} s)")


if __name__ == "__main__":
    main()
