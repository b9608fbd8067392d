"""Sweep speed: what a run costs fresh and through a reused model, side by side.

1. In this process (one TensorFlow thread, as a sweep worker), trains the same
   runs of one trace key (moons, relu, seeds 0..N-1, the article's settings)
   fresh, each tracing everything, then again through the model cache (the
   first run traces, the others reuse its traced functions). Prints the
   seconds per run, the tf.function traces counted, and whether both passes
   logged the same per-batch losses.
2. The default article sweep (75 runs) into temporary folders, fresh and
   reused with the default workers (one per core plus one), and reused with
   one per core: the wall time and seconds per run in its worker.
3. The same sweep as a user starts it, `reproduce sweep` in a new process,
   with the local pool and with `--ray local` (an embedded Ray instance,
   started by each command), alternately: the wall times and their ratio
   (goal: Ray within 1.3x of the local pool). Needs the cluster extra.

    python benchmarks/sweep_speed.py [--runs 6] [--no-sweep] [--ray-repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from reproduce import quiet

quiet.install()

import tensorflow as tf  # noqa: E402
from tensorflow.python.eager.polymorphic_function import tracing_compilation  # noqa: E402

from reproduce import execution as sweep, runs  # noqa: E402
from reproduce.runs import events  # noqa: E402
from reproduce.config import RunConfig  # noqa: E402
from reproduce.training.trainer import train  # noqa: E402


class TraceCounter:
    """Counts tf.function traces (concrete functions created) in this process."""

    def __init__(self):
        self.count = 0
        original = tracing_compilation._create_concrete_function

        def counting(*args, **kwargs):
            self.count += 1
            return original(*args, **kwargs)

        tracing_compilation._create_concrete_function = counting


def time_runs(configs, logdir, reuse_models: bool, counter: TraceCounter):
    """Trains `configs` one after the other.

    Returns wall seconds, CPU seconds (this process's: about the wall time of
    a quiet machine, one thread being used) and traces per run, and the
    runs' batch losses.
    """
    seconds, cpu_seconds, traces, losses = [], [], [], []
    for config in configs:
        before = counter.count
        start, cpu_start = time.perf_counter(), time.process_time()
        result = train(config, logdir, verbose=0, reuse_models=reuse_models)
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
        traces.append(counter.count - before)
        losses.append(events.read_events(result.run_dir / runs.TRAIN_DIR)
                      .scalars["batch_loss"].values.tolist())
    return seconds, cpu_seconds, traces, losses


def per_run_costs(count: int) -> None:
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    counter = TraceCounter()
    configs = [RunConfig(dataset="moons", activation="relu", seed=seed) for seed in range(count)]
    with tempfile.TemporaryDirectory() as fresh_dir, tempfile.TemporaryDirectory() as reuse_dir:
        train(RunConfig(dataset="circles", activation="tanh"), fresh_dir, verbose=0)  # warm up
        fresh = time_runs(configs, fresh_dir, False, counter)
        reused = time_runs(configs, reuse_dir, True, counter)
    print(f"Per run, moons relu (article settings), {count} seeds, one thread "
          f"(wall / CPU seconds):")
    print(f"  {'':28} {'first run':>13} {'others (median)':>16} {'traces per run':>15}")
    for name, (seconds, cpu_seconds, traces, _) in (("fresh model each run", fresh),
                                                    ("reused model (model_cache)", reused)):
        print(f"  {name:28} {seconds[0]:5.2f} / {cpu_seconds[0]:5.2f} "
              f"{statistics.median(seconds[1:]):7.2f} / {statistics.median(cpu_seconds[1:]):5.2f} "
              f"{'/'.join(map(str, traces)):>15}")
    wall_ratio = statistics.median(fresh[0][1:]) / statistics.median(reused[0][1:])
    cpu_ratio = statistics.median(fresh[1][1:]) / statistics.median(reused[1][1:])
    print(f"  reused runs are {wall_ratio:.1f}x faster in wall time, {cpu_ratio:.1f}x in CPU "
          f"time; identical batch losses: {fresh[3] == reused[3]}")


def sweep_times() -> None:
    jobs = sweep.default_jobs()
    print(f"\nThe default article sweep (75 runs), {jobs} workers (the default) or one per core:")
    article = sweep.load_sweep()
    for name, reuse_models, workers in (("fresh model each run", False, jobs),
                                        ("reused models", True, jobs),
                                        ("reused, one per core", True, os.cpu_count() or 1)):
        with tempfile.TemporaryDirectory() as logdir:
            summary = sweep.run_all(article, logdir, jobs=workers, reuse_models=reuse_models)
        trained = summary.trained
        per_run = statistics.mean(outcome.seconds for outcome in trained)
        print(f"  {name:22} {workers} workers: wall {summary.seconds:6.1f}s, {per_run:.2f}s per "
              f"run in its worker ({len(trained)} runs)", flush=True)


RAY_GOAL = 1.3  # Ray's wall time over the local pool's, at most


def ray_times(repeats: int) -> None:
    print(f"\nThe article sweep by `reproduce sweep`, local pool against --ray local, "
          f"alternately ({repeats} each):")
    times = {"local pool": [], "--ray local": []}
    for repeat in range(repeats):
        for name, flags in (("local pool", []), ("--ray local", ["--ray", "local"])):
            with tempfile.TemporaryDirectory() as logdir:
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "reproduce.cli", "sweep", "--logdir", logdir,
                                *flags], check=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
                times[name].append(time.perf_counter() - start)
            print(f"  {repeat + 1}/{repeats} {name:12} {times[name][-1]:6.1f}s", flush=True)
    ratio = statistics.median(times["--ray local"]) / statistics.median(times["local pool"])
    verdict = "meets" if ratio <= RAY_GOAL else "misses"
    print(f"  median: local pool {statistics.median(times['local pool']):.1f}s, --ray local "
          f"{statistics.median(times['--ray local']):.1f}s: {ratio:.2f}x ({verdict} the goal "
          f"of {RAY_GOAL}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6, help="runs per pass in part 1")
    parser.add_argument("--no-sweep", action="store_true", help="skip parts 2 and 3")
    parser.add_argument("--ray-repeats", type=int, default=2,
                        help="alternations of part 3 (0 skips it)")
    parser.add_argument("--only-ray", action="store_true", help="run part 3 alone")
    args = parser.parse_args()
    if not args.only_ray:
        per_run_costs(args.runs)
        if not args.no_sweep:
            sweep_times()
    if (args.only_ray or not args.no_sweep) and args.ray_repeats:
        ray_times(args.ray_repeats)


if __name__ == "__main__":
    main()
