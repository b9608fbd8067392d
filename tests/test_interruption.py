"""A killed or interrupted sweep never costs a finished run, and reruns give the same numbers."""

import hashlib
import re
import signal
import warnings

import numpy as np
import pytest

from conftest import (
    TINY_SWEEP, finish, start_cli, tiny_sweep_run, wait_for_line, wait_for_lines,
    wait_until_group_gone)
from reproduce import execution, runs
from reproduce.runs import events

ACTIVATIONS = ("linear", "relu", "tanh")


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweep") / "tiny.toml"
    path.write_text(TINY_SWEEP)
    return path


@pytest.fixture(scope="module")
def reference(sweep_file, tmp_path_factory):
    """Every run's per-batch losses from one uninterrupted sweep."""
    logdir = tmp_path_factory.mktemp("reference")
    execution.run_all(execution.load_sweep(sweep_file), logdir, jobs=1)
    return batch_losses(logdir)


def configs(sweep_file):
    return execution.load_sweep(sweep_file).configs()


def batch_losses(logdir) -> dict[str, np.ndarray]:
    return {path.name: events.read_events(path / runs.TRAIN_DIR).scalars["batch_loss"].values
            for path in runs.find_runs(logdir)}


def file_digests(run_dir) -> dict[str, str]:
    return {str(path.relative_to(run_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(run_dir.rglob("*")) if path.is_file()}


def start_sweep(sweep_file, logdir, jobs, hold=None):
    return start_cli("sweep", sweep_file, "--logdir", logdir, "--jobs", jobs, hold=hold)


run_name = tiny_sweep_run


def held(activation: str) -> str:
    return f"{run_name(activation)}: held at step"


# (jobs, runs held at their first batch end, line to wait for): before any run,
# during the second run, between runs, and during runs of two worker processes.
KILL_POINTS = {
    "before": (1, None, None),
    "during": (1, run_name("relu"), held("relu")),
    "after": (1, None, f"[1/3] {run_name('linear')}  val_acc="),
    "during-2-jobs": (2, "*", ": held at step"),
}


@pytest.mark.parametrize("point", KILL_POINTS)
def test_sigkill_then_rerun_completes_each_run_once_and_keeps_finished_ones(
        tmp_path, sweep_file, reference, point):
    jobs, hold, line = KILL_POINTS[point]
    logdir = tmp_path / "logs"
    process = start_sweep(sweep_file, logdir, jobs, hold)
    if line:
        wait_for_line(process, line)
    finish(process, signal.SIGKILL)
    wait_until_group_gone(process.pid)  # orphaned sweep workers notice and stop
    finished = {path: file_digests(path) for path in runs.find_runs(logdir)
                if runs.is_complete(path)} if logdir.exists() else {}

    run_paths = [runs.run_dir(config, logdir) for config in configs(sweep_file)]
    unfinished = sorted(str(path) for path in run_paths
                        if path.exists() and not runs.is_complete(path))
    # Rerun here (TensorFlow is loaded already), as `reproduce sweep --jobs 1` would.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rerun = execution.run_all(execution.load_sweep(sweep_file), logdir, jobs=1)
    assert f"{len(finished)} already complete, 0 failed" in rerun.describe()
    replaced = [re.search(r"replacing incomplete run (\S+)", str(warning.message))
                for warning in caught]
    assert sorted(match.group(1) for match in replaced if match) == unfinished
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
    # linear completes; relu (and, with two workers, tanh) are held mid-run.
    process = start_sweep(sweep_file, logdir, jobs, hold="moons/[rt]*")
    wait_for_lines(process, [f"{run_name('linear')}  val_acc=", held("relu"),
                             *([held("tanh")] if jobs == 2 else [])])
    stdout, stderr = finish(process, signal.SIGINT, whole_group)
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr and "Exception" not in stderr, stderr
    message = re.fullmatch(
        r"reproduce sweep: interrupted during (.+) \(its unfinished folder was removed\); "
        r"completed runs are kept\. Resume with: (.+)", stderr.strip().splitlines()[-1])
    assert message, stderr[-2000:]
    interrupted = message.group(1).split(", ")
    assert sorted(interrupted) == ([run_name("relu")] if jobs == 1
                                   else [run_name("relu"), run_name("tanh")])
    assert message.group(2) == f"reproduce sweep {sweep_file} --logdir {logdir} --jobs {jobs}"
    wait_until_group_gone(process.pid)  # nothing keeps writing once the command has returned
    for config in configs(sweep_file):
        path = runs.run_dir(config, logdir)
        if runs.run_name(config) in interrupted:
            assert not path.exists()
        else:
            assert not path.exists() or runs.is_complete(path)
    assert runs.is_complete(runs.run_dir(configs(sweep_file)[0], logdir))


def test_ctrl_c_during_the_article_sweep_says_what_it_stopped_and_nothing_else(
        tmp_path, sweep_file):
    # `article` imports TensorFlow for the figures in a thread, with the process's stderr
    # captured while it loads (as the workers start); the message must get out all the same.
    logdir = tmp_path / "logs"
    process = start_cli("article", sweep_file, "--logdir", logdir, "--jobs", "2",
                        hold=run_name("tanh"))
    wait_for_lines(process, [f"{run_name('linear')}  val_acc=", f"{run_name('relu')}  val_acc=",
                             held("tanh")])  # the worker without tanh is done
    stdout, stderr = finish(process, signal.SIGINT)
    assert process.returncode == 130, stderr[-3000:]
    assert stderr == (f"reproduce article: interrupted during {run_name('tanh')} (its unfinished "
                      f"folder was removed); completed runs are kept. Resume with: reproduce "
                      f"article {sweep_file} --logdir {logdir} --jobs 2\n")


def test_same_sweep_twice_gives_identical_batch_losses(tmp_path, sweep_file, reference):
    execution.run_all(execution.load_sweep(sweep_file), tmp_path, jobs=1)
    losses = batch_losses(tmp_path)
    assert losses.keys() == reference.keys() and len(losses) == len(ACTIVATIONS)
    for name, values in reference.items():
        assert len(values) == 12  # 3 epochs of 4 steps
        np.testing.assert_array_equal(losses[name], values)


def test_ctrl_c_during_train_leaves_no_half_written_run(tmp_path):
    logdir = tmp_path / "logs"
    process = start_cli("train", "--experiment", "tiny", "--epochs", "3", "--samples", "80",
                        "--steps-per-execution", "1", "--logdir", logdir, hold="*")
    wait_for_line(process, "moons/linear-d4-w32-s0-ep=3-n=80: held at step 1")
    _, stderr = finish(process, signal.SIGINT)
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith(
        "reproduce train: interrupted during moons/linear-d4-w32-s0-ep=3-n=80 (its unfinished "
        "folder was removed). Train it again with: reproduce train --experiment tiny --epochs 3")
    assert runs.find_runs(logdir) == []
