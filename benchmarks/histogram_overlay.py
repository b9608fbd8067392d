"""Times the Histogram overlay tab's data route: one tag overlaid across every run.

Starts TensorBoard on LOGDIR as `reproduce tensorboard` does (every sample
kept), waits until it serves every run's last logged step of the tag, then
requests the tab's overlay of that tag over all runs (the histograms, the
layer view and the table), the same grouped as the tab shows a sweep
(colour by activation, a panel per dataset, symmetric log x, each group's
median and band), the grouped view over steps (every run's and group's
quantiles at every logged step), the overlay over three runs, several
times each, and the tag list. Prints the median, fastest and slowest
answer. The goals, for the 75 runs of the default experiment on 2 cores:
at most 1 s for the overlay and the grouped overlay, 2 s over steps.

    python benchmarks/histogram_overlay.py [LOGDIR] [--tag TAG] [--repeat N] [--load-fast false]

LOGDIR defaults to `logs/article` (produce it with `reproduce article`).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from reproduce import runs, tensorboard
from reproduce.runs import events
from reproduce.tensorboard.histogram_overlay import plugin

DEFAULT_LOGDIR = Path("logs/article")
DEFAULT_TAG = "gradients/dense_1/kernel"
GROUPED = {"color": "activation", "panel": "dataset", "x": "symlog", "agg": "bands"}
GOALS = {"overlay": 1.0, "grouped": 1.0, "steps": 2.0}  # median seconds
STARTUP_SECONDS = 600  # TensorBoard imports TensorFlow, then loads every run
THREE_RUNS = "circles/(linear|relu|sigmoid)-d4-w32-s0/"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir", nargs="?", type=Path, default=DEFAULT_LOGDIR)
    parser.add_argument("--tag", default=DEFAULT_TAG)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--load-fast", default="auto", choices=["auto", "true", "false"],
                        help="TensorBoard's loader: its Rust data server (auto) or Python (false)")
    args = parser.parse_args(argv)

    last_steps = expected_last_steps(args.logdir, args.tag)
    print(f"{len(last_steps)} runs under {args.logdir} log {args.tag}")
    with socket.socket() as probe:
        probe.bind((tensorboard.DEFAULT_HOST, 0))
        port = probe.getsockname()[1]
    command = tensorboard.build_command(args.logdir, port=port) + ["--load_fast", args.load_fast]
    base = f"http://{tensorboard.DEFAULT_HOST}:{port}/data/plugin/{plugin.PLUGIN_NAME}"
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            start = time.perf_counter()
            wait_until_loaded(base, args.tag, last_steps, process, log)
            print(f"TensorBoard (--load_fast {args.load_fast}) served every run after "
                  f"{time.perf_counter() - start:.1f} s")
            every_run = time_requests(f"{base}/data", {"tag": args.tag}, args.repeat)
            grouped = time_requests(f"{base}/data", {"tag": args.tag, **GROUPED}, args.repeat)
            steps = time_requests(f"{base}/data", {"tag": args.tag, **GROUPED, "view": "steps"},
                                  args.repeat)
            three = time_requests(f"{base}/data", {"tag": args.tag, "runs": THREE_RUNS},
                                  args.repeat)
            tags = time_requests(f"{base}/tags", {}, args.repeat)
        finally:
            process.terminate()
            process.wait(timeout=30)
    report(f"overlay of {args.tag} across all {len(last_steps)} runs", every_run)
    report(f"grouped overlay ({GROUPED})", grouped)
    report("grouped view over steps", steps)
    report(f"overlay across 3 runs ({THREE_RUNS})", three)
    report("tag list", tags)
    for name, seconds in (("overlay", every_run), ("grouped", grouped), ("steps", steps)):
        verdict = "meets" if statistics.median(seconds) <= GOALS[name] else "misses"
        print(f"{name}: {verdict} the goal of {GOALS[name]:g} s across all runs")


def expected_last_steps(logdir: Path, tag: str) -> dict[str, int]:
    """TensorBoard run name -> the last step of `tag` in its event files."""
    last_steps = {}
    for run_dir in runs.find_runs(logdir):
        histograms = events.read_events(run_dir / runs.TRAIN_DIR).histograms.get(tag)
        if histograms is not None:
            last_steps[str((run_dir / runs.TRAIN_DIR).relative_to(logdir))] = int(
                histograms.steps[-1])
    if not last_steps:
        sys.exit(f"no run under {logdir} logs {tag}")
    return last_steps


def fetch(url: str, query: dict) -> tuple[float, dict]:
    start = time.perf_counter()
    with urllib.request.urlopen(f"{url}?{urllib.parse.urlencode(query)}", timeout=60) as answer:
        body = json.loads(answer.read())
    return time.perf_counter() - start, body


def wait_until_loaded(base, tag, last_steps, process, log) -> None:
    """Polls until the overlay shows every run at its own last logged step."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            _, body = fetch(f"{base}/data", {"tag": tag})
            if {series["run"]: series["step"] for series in body["series"]} == last_steps:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # not listening yet, or no run loaded yet (400)
        if process.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            sys.exit(f"TensorBoard did not serve every run:\n{log.read()[-3000:]}")
        time.sleep(1)


def time_requests(url: str, query: dict, repeat: int) -> list[float]:
    return [fetch(url, query)[0] for _ in range(repeat)]


def report(what: str, seconds: list[float]) -> None:
    print(f"{what}: median {statistics.median(seconds):.3f} s, fastest {min(seconds):.3f} s, "
          f"slowest {max(seconds):.3f} s ({len(seconds)} requests)")


if __name__ == "__main__":
    main()
