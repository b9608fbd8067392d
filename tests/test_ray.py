"""Sweeps on Ray (`--ray local`, an embedded instance): the local pool's guarantees and results."""

import io
import json
import os
import re
import signal
import zipfile

import h5py
import numpy as np
import pytest

from conftest import TINY_FIXED, finish, run_cli, start_cli, wait_for_line
from reproduce import runs
from reproduce.runs import events

pytest.importorskip("ray")  # the cluster extra; `make test` installs it

# 2 activations x 2 datasets x 2 seeds, 2 epochs of 4 steps.
SWEEP = """experiment = "tiny"
[grid]
activation = ["linear", "relu"]
dataset = ["moons", "circles"]
seed = [0, 1]
""" + TINY_FIXED
RUN_COUNT = 8
# Three runs, the second held at its first batch end until its worker is killed.
KILL_SWEEP = SWEEP.replace('activation = ["linear", "relu"]\ndataset = ["moons", "circles"]\n'
                           'seed = [0, 1]', 'activation = ["linear", "relu", "tanh"]')
KILLED = "moons/relu-d2-w8-s0-bs=16-ep=2-n=80"

pytestmark = pytest.mark.xdist_group("ray")  # one Ray instance at a time on 2 cores


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweep") / "tiny.toml"
    path.write_text(SWEEP)
    return path


@pytest.fixture(scope="module")
def ray_sweep(sweep_file, tmp_path_factory):
    logdir = tmp_path_factory.mktemp("ray")
    result = run_cli("sweep", sweep_file, "--logdir", logdir, "--ray", "local")
    assert result.returncode == 0, result.stderr[-3000:]
    return logdir, result.stdout


def weights(model_path) -> dict[str, np.ndarray]:
    """Every array of a saved model's weights file (the model's and the optimizer's)."""
    with zipfile.ZipFile(model_path) as archive:
        with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as weights_file:
            arrays = {}
            weights_file.visititems(lambda name, item: arrays.__setitem__(name, item[()])
                                    if isinstance(item, h5py.Dataset) else None)
    return arrays


def test_every_run_is_trained_once_with_progress_lines(ray_sweep):
    logdir, output = ray_sweep
    finished = [run_dir for run_dir in runs.find_runs(logdir) if runs.is_complete(run_dir)]
    assert len(finished) == RUN_COUNT
    for run_dir in finished:
        name = runs.Run(run_dir).name
        assert len(re.findall(rf"\] {re.escape(name)}  started", output)) == 1, name
        assert len(re.findall(rf"\] {re.escape(name)}  val_acc=", output)) == 1, name
    assert "ETA" in output
    assert f"{RUN_COUNT} runs: {RUN_COUNT} trained, 0 already complete, 0 failed" in output
    assert "on Ray (local)" in output


def test_ray_runs_equal_the_local_pools_bit_for_bit(ray_sweep, sweep_file, tmp_path):
    ray_logdir, _ = ray_sweep
    result = run_cli("sweep", sweep_file, "--logdir", tmp_path, "--jobs", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    local_runs = {runs.Run(run_dir).name: run_dir for run_dir in runs.find_runs(tmp_path)}
    ray_runs = {runs.Run(run_dir).name: run_dir for run_dir in runs.find_runs(ray_logdir)}
    assert sorted(local_runs) == sorted(ray_runs) and len(ray_runs) == RUN_COUNT
    for name, ray_dir in ray_runs.items():
        local_dir = local_runs[name]
        assert (json.loads((ray_dir / "history.json").read_text())
                == json.loads((local_dir / "history.json").read_text())), name
        losses = [events.read_events(run_dir / runs.TRAIN_DIR).scalars["batch_loss"].values
                  for run_dir in (ray_dir, local_dir)]
        np.testing.assert_array_equal(*losses, err_msg=name)
        ray_weights, local_weights = (weights(run_dir / "model.keras")
                                      for run_dir in (ray_dir, local_dir))
        assert sorted(ray_weights) == sorted(local_weights)
        for key, array in ray_weights.items():
            np.testing.assert_array_equal(array, local_weights[key], err_msg=f"{name} {key}")


def test_killed_worker_fails_its_run_and_the_rerun_trains_only_that(tmp_path):
    sweep_file = tmp_path / "kill.toml"
    sweep_file.write_text(KILL_SWEEP)
    logdir = tmp_path / "logs"
    process = start_cli("sweep", sweep_file, "--logdir", logdir, "--ray", "local", "--jobs", "2",
                        hold=KILLED)
    try:
        line = wait_for_line(process, f"{KILLED}: held at step")
        os.kill(int(re.search(r"\(pid (\d+),", line).group(1)), signal.SIGKILL)
        output, errors = finish(process)
    finally:
        if process.poll() is None:
            finish(process, signal.SIGINT, whole_group=True)
    assert process.returncode == 1, errors[-3000:]
    assert re.search(rf"{re.escape(KILLED)}  FAILED: its Ray worker died", output)
    assert "3 runs: 2 trained, 0 already complete, 1 failed" in output
    killed_dir = logdir / "tiny" / KILLED
    assert not runs.is_complete(killed_dir)
    others = {run_dir: (run_dir / runs.MARKER_FILE).read_bytes()
              for run_dir in runs.find_runs(logdir) if runs.is_complete(run_dir)}
    assert len(others) == 2

    rerun = run_cli("sweep", sweep_file, "--logdir", logdir, "--ray", "local")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "3 runs: 1 trained, 2 already complete, 0 failed" in rerun.stdout
    assert re.search(rf"{re.escape(KILLED)}  val_acc=", rerun.stdout)
    assert runs.is_complete(killed_dir)
    for run_dir, marker in others.items():  # not trained again
        assert (run_dir / runs.MARKER_FILE).read_bytes() == marker


def test_without_ray_installed_the_flag_is_one_line_before_tensorflow(tmp_path, sweep_file):
    # A `ray` that cannot be imported, and a `tensorflow` that fails if anything imports it.
    for name, text in (("ray", "raise ImportError(\"No module named 'ray'\")"),
                       ("tensorflow", "raise SystemExit('tensorflow was imported')")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(text)
    for command in ("sweep", "article", "beyond"):
        arguments = [command] + ([sweep_file] if command != "beyond" else [])
        result = run_cli(*arguments, "--logdir", tmp_path / "logs", "--ray", "local",
                         env={"PYTHONPATH": os.pathsep.join(
                             [str(tmp_path), os.environ.get("PYTHONPATH", "")])})
        assert result.returncode == 2, result.stderr
        assert result.stderr == (f"reproduce {command}: error: --ray needs Ray, which is not "
                                 "installed: pip install -e '.[cluster]'\n")
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("flags, message", [
    (["--ray", "local", "--ray-cpus", "0"], "--ray-cpus must be more than 0, got 0"),
    (["--ray", "local", "--ray-gpus", "-1"], "--ray-gpus must be 0 or more, got -1"),
])
def test_bad_ray_values_are_named(sweep_file, tmp_path, flags, message):
    result = run_cli("sweep", sweep_file, "--logdir", tmp_path, *flags)
    assert result.returncode == 2
    assert result.stderr == f"reproduce sweep: error: {message}\n"


def test_ctrl_c_kills_the_workers_and_removes_the_unfinished_folders(tmp_path, sweep_file):
    logdir = tmp_path / "logs"
    process = start_cli("sweep", sweep_file, "--logdir", logdir, "--ray", "local", "--jobs", "2",
                        hold="*")
    wait_for_line(process, ": held at step")
    _, errors = finish(process, signal.SIGINT, whole_group=True)  # as a terminal's Ctrl-C
    assert process.returncode == 130, errors[-3000:]
    assert "interrupted during" in errors and "(its unfinished folder was removed)" in errors
    assert not [path for path in logdir.rglob(runs.MARKER_FILE)]
    assert not [path for path in logdir.rglob(runs.CONFIG_FILE)]  # no folder left behind
