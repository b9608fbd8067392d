"""Times one configuration under each distribution strategy, side by side.

Trains the same run (by default digits, relu, 10 epochs) with `reproduce
train` in fresh processes: the default strategy (Keras's `fit`), `mirrored`
over two logical CPU devices, and `multi_worker` with two workers on
127.0.0.1 (both through our fit-equivalent loop). Prints the training time
from each run's COMPLETE marker (start of training to marker, TensorFlow's
import excluded), the command's wall time, the final validation accuracy, and
the ratios to the default strategy. On a CPU-only machine the replicas share
the same cores, so this measures the cost of the distributed machinery, not a
speed-up.

    python benchmarks/strategies.py [--dataset digits] [--epochs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reproduce import runs
from reproduce.config import RunConfig


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def train_command(config: RunConfig, logdir: Path) -> list[str]:
    flags = ["--dataset", config.dataset, "--activation", config.activation,
             "--epochs", str(config.epochs), "--strategy", config.strategy]
    if config.devices:
        flags += ["--devices", config.devices]
    return [sys.executable, "-m", "reproduce.cli", "train", *flags, "--quiet",
            "--logdir", str(logdir)]


def run(config: RunConfig, logdir: Path, workers: int = 1) -> dict:
    """Trains `config` with `workers` processes; returns the chief's marker and the wall time."""
    cluster = {"worker": [f"127.0.0.1:{free_port()}" for _ in range(workers)]}
    start = time.perf_counter()
    processes = []
    for index in range(workers):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        if config.strategy == "multi_worker":
            env["TF_CONFIG"] = json.dumps({"cluster": cluster,
                                           "task": {"type": "worker", "index": index}})
        processes.append(subprocess.Popen(train_command(config, logdir), env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                          text=True))
    try:
        for process in processes:
            _, stderr = process.communicate(timeout=1800)
            if process.returncode:
                raise SystemExit(f"{config.strategy} failed:\n{stderr[-2000:]}")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    marker = runs.read_marker(runs.run_dir(config, logdir))
    return {**marker.to_dict(), "command_s": time.perf_counter() - start}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--activation", default="relu")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args(argv)
    base = RunConfig(dataset=args.dataset, activation=args.activation, epochs=args.epochs)
    variants = [
        ("default (Keras fit, 1 device)", base, 1),
        ("mirrored, 2 logical CPUs", base.replace(strategy="mirrored", devices="/cpu:0,/cpu:1"), 1),
        ("multi_worker, 2 loopback workers", base.replace(strategy="multi_worker"), 2),
    ]
    with tempfile.TemporaryDirectory() as scratch:
        results = [(label, run(config, Path(scratch) / str(index), workers))
                   for index, (label, config, workers) in enumerate(variants)]
    reference = results[0][1]
    print(f"{base.dataset}, {base.activation}, {base.epochs} epochs, batch {base.batch_size}, "
          f"steps_per_execution {base.steps_per_execution}, {reference['steps']} steps")
    print(f"{'strategy':34} {'replicas':>8} {'train s':>8} {'ratio':>6} {'command s':>10} "
          f"{'ratio':>6} {'val_acc':>8}")
    for label, result in results:
        print(f"{label:34} {result['replicas']:8d} {result['wall_time_s']:8.1f} "
              f"{result['wall_time_s'] / reference['wall_time_s']:6.2f} "
              f"{result['command_s']:10.1f} {result['command_s'] / reference['command_s']:6.2f} "
              f"{result['final']['val_accuracy']:8.3f}")


if __name__ == "__main__":
    main()
