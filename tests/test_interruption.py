"""A killed or interrupted sweep never costs a finished run, and reruns give the same numbers."""

import hashlib
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from reproduce import events, runs, sweep

ACTIVATIONS = ("linear", "relu", "tanh")
SWEEP_TEXT = f"""experiment = "tiny"
[grid]
activation = {list(ACTIVATIONS)}
[fixed]
depth = 2
width = 8
batch_size = 16
epochs = 3
samples = 80
steps_per_execution = 4
probe_size = 32
""".replace("'", '"')
PROCESS_TIMEOUT_S = 180


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweep") / "tiny.toml"
    path.write_text(SWEEP_TEXT)
    return path


@pytest.fixture(scope="module")
def reference(sweep_file, tmp_path_factory):
    """Every run's per-batch losses from one uninterrupted sweep."""
    logdir = tmp_path_factory.mktemp("reference")
    sweep.run_all(sweep.load_sweep(sweep_file), logdir, jobs=1)
    return batch_losses(logdir)


def configs(sweep_file):
    return sweep.load_sweep(sweep_file).configs()


def batch_losses(logdir) -> dict[str, np.ndarray]:
    return {path.name: events.read_events(path / runs.TRAIN_DIR).scalars["batch_loss"].values
            for path in runs.find_runs(logdir)}


def file_digests(run_dir) -> dict[str, str]:
    return {str(path.relative_to(run_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(run_dir.rglob("*")) if path.is_file()}


def start_sweep(sweep_file, logdir, jobs):
    """Starts `reproduce sweep` in a process group of its own, as a terminal would."""
    return subprocess.Popen(
        [sys.executable, "-m", "reproduce.cli", "sweep", str(sweep_file), "--logdir", str(logdir),
         "--jobs", str(jobs)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def wait_for_line(process, text: str) -> None:
    for line in process.stdout:
        if text in line:
            return
    pytest.fail(f"the sweep ended without printing {text!r}: {process.stderr.read()[-2000:]}")


def finish(process, signal_number, whole_group=False) -> tuple[str, str]:
    """Sends `signal_number` to the process (or to its group, as Ctrl-C in a terminal does)."""
    try:
        if whole_group:
            os.killpg(process.pid, signal_number)
        else:
            process.send_signal(signal_number)
        return process.communicate(timeout=PROCESS_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def run_name(activation: str) -> str:
    return f"moons/{activation}-d2-w8-s0-bs=16-ep=3-n=80"


# (jobs, line to wait for, seconds to wait after it): before any run, during
# the second run, between runs, and during runs of two worker processes.
KILL_POINTS = {
    "before": (1, None, 1.0),
    "during": (1, f"[2/3] {run_name('relu')}  started", 1.0),
    "after": (1, f"[1/3] {run_name('linear')}  val_acc=", 0.0),
    "during-2-jobs": (2, f"{run_name('linear')}  started", 3.0),
}


@pytest.mark.parametrize("point", KILL_POINTS)
def test_sigkill_then_rerun_completes_each_run_once_and_keeps_finished_ones(
        tmp_path, sweep_file, reference, point):
    jobs, line, delay = KILL_POINTS[point]
    logdir = tmp_path / "logs"
    process = start_sweep(sweep_file, logdir, jobs)
    if line:
        wait_for_line(process, line)
    time.sleep(delay)
    finish(process, signal.SIGKILL)
    time.sleep(1.0)  # orphaned sweep workers notice their parent is gone and stop
    finished = {path: file_digests(path) for path in runs.find_runs(logdir)
                if runs.is_complete(path)} if logdir.exists() else {}

    rerun = subprocess.run(
        [sys.executable, "-m", "reproduce.cli", "sweep", str(sweep_file), "--logdir",
         str(logdir), "--jobs", "1"],
        capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"{len(finished)} already complete, 0 failed" in rerun.stdout
    run_dirs = runs.find_runs(logdir)
    assert [path.name for path in run_dirs] == sorted(
        runs.run_dir(config, logdir).name for config in configs(sweep_file))  # each once
    assert all(runs.is_complete(path) for path in run_dirs)
    for path, digests in finished.items():
        assert file_digests(path) == digests  # byte for byte
    leftovers = [path for path in logdir.rglob("*") if path.name.endswith(".partial")]
    assert not leftovers
    # Redone from scratch: every run's per-batch losses equal the uninterrupted sweep's.
    losses = batch_losses(logdir)
    assert losses.keys() == reference.keys()
    for name, values in reference.items():
        np.testing.assert_array_equal(losses[name], values)


@pytest.mark.parametrize("jobs, whole_group", [(1, False), (2, False), (2, True)])
def test_ctrl_c_stops_cleanly_naming_the_run_and_how_to_resume(
        tmp_path, sweep_file, jobs, whole_group):
    logdir = tmp_path / "logs"
    process = start_sweep(sweep_file, logdir, jobs)
    wait_for_line(process, f"{run_name('linear')}  val_acc=")
    if jobs == 1:
        wait_for_line(process, f"{run_name('relu')}  started")
    time.sleep(1.0)
    stdout, stderr = finish(process, signal.SIGINT, whole_group)
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr and "Exception" not in stderr, stderr
    message = re.fullmatch(
        r"reproduce sweep: interrupted during (.+) \(its unfinished folder was removed\); "
        r"completed runs are kept\. Resume with: (.+)", stderr.strip().splitlines()[-1])
    assert message, stderr[-2000:]
    interrupted = message.group(1).split(", ")
    if jobs == 1:
        assert interrupted == [run_name("relu")]
    assert message.group(2) == f"reproduce sweep {sweep_file} --logdir {logdir} --jobs {jobs}"
    time.sleep(1.0)  # nothing keeps writing once the command has returned
    for config in configs(sweep_file):
        path = runs.run_dir(config, logdir)
        if runs.run_name(config) in interrupted:
            assert not path.exists()
        else:
            assert not path.exists() or runs.is_complete(path)
    assert runs.is_complete(runs.run_dir(configs(sweep_file)[0], logdir))


def test_same_sweep_twice_gives_identical_batch_losses(tmp_path, sweep_file, reference):
    sweep.run_all(sweep.load_sweep(sweep_file), tmp_path, jobs=1)
    losses = batch_losses(tmp_path)
    assert losses.keys() == reference.keys() and len(losses) == len(ACTIVATIONS)
    for name, values in reference.items():
        assert len(values) == 12  # 3 epochs of 4 steps
        np.testing.assert_array_equal(losses[name], values)


def test_ctrl_c_during_train_leaves_no_half_written_run(tmp_path):
    logdir = tmp_path / "logs"
    process = subprocess.Popen(
        [sys.executable, "-m", "reproduce.cli", "train", "--experiment", "tiny", "--epochs", "200",
         "--samples", "80", "--steps-per-execution", "1", "--logdir", str(logdir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    wait_for_line(process, "Epoch 3/200")
    _, stderr = finish(process, signal.SIGINT)
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith(
        "reproduce train: interrupted during moons/linear-d4-w32-s0-ep=200-n=80 (its unfinished "
        "folder was removed). Train it again with: reproduce train --experiment tiny --epochs 200")
    assert runs.find_runs(logdir) == []
