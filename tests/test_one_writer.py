"""One writer per run folder: an OS lock held by the process that trains the run."""

import os
import re
import signal

import pytest

from conftest import (
    TINY_SWEEP, TINY_SWEEP_STEPS, event_file_pids, finish, kill_if_running, run_cli, start_cli,
    tiny_sweep_run, wait_for_line)
from reproduce import runs
from reproduce.config import TEST_CONFIG, RunConfig
from reproduce.runs import events
from reproduce.training.trainer import train

TRAIN_ARGS = ["train", "--experiment", "tiny", "--depth", "2", "--width", "8", "--epochs", "2",
              "--samples", "80", "--steps-per-execution", "1", "--quiet"]
TRAIN_RUN = "moons/linear-d2-w8-s0-ep=2-n=80"
TRAIN_CONFIG = RunConfig(experiment="tiny", depth=2, width=8, epochs=2, samples=80,
                         steps_per_execution=1)  # TRAIN_ARGS
TRAIN_STEPS = 4  # 64 training examples in batches of 32, two epochs


def assert_trained_once_by(run_dir, pids: set[int], steps: int) -> None:
    """The run is complete, written by one of `pids` alone, with each step logged once."""
    assert runs.is_complete(run_dir)
    writers = event_file_pids(run_dir)
    assert len(writers) == 1 and writers <= pids, (writers, pids)
    logged = events.read_events(run_dir / runs.TRAIN_DIR).scalars["batch_loss"].steps
    assert list(logged) == list(range(1, steps + 1))


def test_lock_is_held_by_one_process_and_reentrant_in_it(tmp_path):
    run_dir = runs.run_dir(TEST_CONFIG, tmp_path)
    with runs.write_lock(run_dir):
        with runs.write_lock(run_dir):  # the holder may enter again
            pass
        holder = runs.lock_file(run_dir).read_text().strip()
        other = run_cli("train", "--experiment", "test", "--depth", "2", "--width", "8",
                        "--batch-size", "16", "--epochs", "2", "--samples", "80",
                        "--steps-per-execution", "4", "--probe-size", "32", "--logdir", tmp_path)
    assert other.returncode == 2, other.stderr
    lines = other.stderr.strip().splitlines()
    assert lines == [f"reproduce train: error: run moons/linear-d2-w8-s0-bs=16-ep=2-n=80 is "
                     f"being trained by another process (pid {holder}); wait for it to finish"]
    assert holder == str(os.getpid())
    assert not run_dir.exists()  # the refusal wrote nothing


def test_second_train_of_a_run_in_progress_is_refused(tmp_path):
    logdir, release = tmp_path / "logs", tmp_path / "release"
    first = start_cli(*TRAIN_ARGS, "--logdir", logdir, hold="*", release=release)
    try:
        wait_for_line(first, f"{TRAIN_RUN}: held at step 1")
        second = run_cli(*TRAIN_ARGS, "--logdir", logdir)
        release.touch()
        first_out, first_err = finish(first)
    finally:
        kill_if_running(first)
    assert second.returncode == 2, second.stderr
    assert second.stderr.strip().splitlines() == [
        f"reproduce train: error: run {TRAIN_RUN} is being trained by another process "
        f"(pid {first.pid}); wait for it to finish"]
    assert first.returncode == 0, first_err[-3000:]
    assert_trained_once_by(logdir / "tiny" / TRAIN_RUN, {first.pid}, TRAIN_STEPS)


def test_run_of_a_killed_owner_is_free_and_redone(tmp_path):
    logdir = tmp_path / "logs"
    owner = start_cli(*TRAIN_ARGS, "--logdir", logdir, hold="*")
    wait_for_line(owner, f"{TRAIN_RUN}: held at step 1")
    finish(owner, signal.SIGKILL)  # SIGKILL: the kernel releases the lock
    run_dir = logdir / "tiny" / TRAIN_RUN
    assert run_dir.exists() and not runs.is_complete(run_dir)
    with runs.write_lock(run_dir):  # free again
        pass

    # Redone here (TensorFlow is loaded already), as `reproduce train` would.
    with pytest.warns(UserWarning, match="replacing incomplete run"):
        train(TRAIN_CONFIG, logdir)
    assert owner.pid not in event_file_pids(run_dir)
    assert_trained_once_by(run_dir, event_file_pids(run_dir), TRAIN_STEPS)


def test_two_sweeps_at_once_complete_every_run_exactly_once(tmp_path):
    sweep_file, logdir, release = tmp_path / "tiny.toml", tmp_path / "logs", tmp_path / "release"
    sweep_file.write_text(TINY_SWEEP)
    args = ["sweep", sweep_file, "--logdir", logdir, "--jobs", "1"]
    # The first sweep finishes linear, then is held inside relu until released.
    first = start_cli(*args, hold=tiny_sweep_run("relu"), release=release)
    second = None
    try:
        wait_for_line(first, f"{tiny_sweep_run('relu')}: held at step")
        second = start_cli(*args)
        wait_for_line(second, f"{tiny_sweep_run('relu')}  in progress in another process")
        release.touch()
        first_out, first_err = finish(first)
        second_out, second_err = finish(second)
    finally:
        for process in (first, second):
            kill_if_running(process)
    assert first.returncode == 0, first_err[-3000:]
    assert second.returncode == 0, second_err[-3000:]
    # The second sweep trained tanh while the first was held, then waited for relu.
    assert "3 runs: 2 trained, 0 already complete, 1 completed by another process, 0 failed" \
        in first_out
    assert "3 runs: 1 trained, 1 already complete, 1 completed by another process, 0 failed" \
        in second_out
    assert "Waiting for 1 run(s) in progress in another process" in second_out
    assert re.search(rf"{re.escape(tiny_sweep_run('relu'))}  completed by another process",
                     second_out)
    for activation in ("linear", "relu", "tanh"):
        assert_trained_once_by(logdir / "tiny" / tiny_sweep_run(activation),
                               {first.pid, second.pid}, TINY_SWEEP_STEPS)
    assert event_file_pids(logdir / "tiny" / tiny_sweep_run("tanh")) == {second.pid}
