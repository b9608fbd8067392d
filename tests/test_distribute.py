"""Distribution strategies on CPU: mirrored over two logical CPUs, two loopback workers."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from callbacks import tags
from conftest import event_file_pids, run_cli
from reproduce import runs
from reproduce.config import TEST_CONFIG
from reproduce.runs import events
from reproduce.training import models

CONFIG = TEST_CONFIG.replace(activation="relu")
FLAGS = ["--experiment", CONFIG.experiment, "--activation", CONFIG.activation,
         "--depth", CONFIG.depth, "--width", CONFIG.width, "--batch-size", CONFIG.batch_size,
         "--epochs", CONFIG.epochs, "--samples", CONFIG.samples,
         "--steps-per-execution", CONFIG.steps_per_execution, "--probe-size", CONFIG.probe_size]
WORKER_TIMEOUT_S = 240


@pytest.fixture(scope="module")
def mirrored_run(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("mirrored")
    result = run_cli("train", *FLAGS, "--strategy", "mirrored", "--devices", "/cpu:0,/cpu:1",
                     "--quiet", "--logdir", logdir)
    assert result.returncode == 0, result.stderr[-3000:]
    return runs.run_dir(CONFIG, logdir)


def file_layout(run_dir: Path) -> list[str]:
    """The run folder's files, event files reduced to their folder."""
    return sorted(
        str(path.parent.relative_to(run_dir) / "events")
        if path.name.startswith("events.out.tfevents.") and "hparams" not in path.name
        else str(path.relative_to(run_dir))
        for path in run_dir.rglob("*") if path.is_file())


def initial_gradient_norms(probe) -> dict[str, float]:
    """Independent GradientTape on the initial weights (the initializers are seeded)."""
    model = models.build_model(CONFIG, probe["x"].shape[1], 2)
    with tf.GradientTape() as tape:
        loss = keras.losses.BinaryCrossentropy()(probe["y"], model(probe["x"]))
    gradients = tape.gradient(loss, model.trainable_variables)
    norms = {tags.tag(tags.GRADIENT_NORM, tags.variable_key(variable)): float(np.linalg.norm(g))
             for variable, g in zip(model.trainable_variables, gradients)}
    norms[tags.GLOBAL_GRADIENT_NORM] = float(np.linalg.norm(list(norms.values())))
    return norms


@pytest.mark.xdist_group("mirrored_run")  # one worker builds the fixture
def test_mirrored_over_two_cpus_logs_single_device_values_once(mirrored_run):
    marker = runs.read_marker(mirrored_run)
    assert marker.status is runs.RunStatus.COMPLETE and marker.replicas == 2
    assert [device[-5:] for device in marker.devices] == ["CPU:0", "CPU:1"]
    train_events = events.read_events(mirrored_run / runs.TRAIN_DIR)
    for series in [*train_events.scalars.values(), *train_events.histograms.values()]:
        assert len(set(series.steps.tolist())) == len(series.steps)  # one copy per step
    # The global batch is the configured one: 64 examples / 16 = 4 steps per epoch.
    assert train_events.scalars[tags.BATCH_LOSS].steps.tolist() == list(range(1, 9))
    with np.load(mirrored_run / runs.PROBE_FILE, allow_pickle=False) as probe:
        expected = initial_gradient_norms(probe)
    for tag, value in expected.items():
        np.testing.assert_allclose(train_events.scalars[tag].at(0), value, rtol=1e-5)


@pytest.mark.xdist_group("mirrored_run")  # one worker builds the fixture
def test_mirrored_run_repeats_the_default_strategy_run_batch_for_batch(mirrored_run, tiny_run):
    assert tiny_run.config == CONFIG  # the same run, trained by Keras's fit on one device
    mirrored = events.read_events(mirrored_run / runs.TRAIN_DIR).scalars[tags.BATCH_LOSS]
    default = events.read_events(tiny_run.run_dir / runs.TRAIN_DIR).scalars[tags.BATCH_LOSS]
    assert mirrored.steps.tolist() == default.steps.tolist()
    np.testing.assert_allclose(mirrored.values, default.values, rtol=1e-5)
    history = json.loads((mirrored_run / runs.HISTORY_FILE).read_text())
    for name, values in tiny_run.history.items():
        np.testing.assert_allclose(history[name], values, rtol=1e-5)


@pytest.mark.xdist_group("mirrored_run")  # one worker builds the fixture
def test_mirrored_final_gradient_norm_matches_saved_model(mirrored_run):
    model = keras.saving.load_model(mirrored_run / runs.MODEL_FILE, safe_mode=True)
    with np.load(mirrored_run / runs.PROBE_FILE, allow_pickle=False) as probe:
        with tf.GradientTape() as tape:
            loss = keras.losses.BinaryCrossentropy()(probe["y"], model(probe["x"]))
    gradients = tape.gradient(loss, model.trainable_variables)
    norm = np.sqrt(sum(np.sum(np.square(gradient)) for gradient in gradients))
    logged = events.read_events(mirrored_run / runs.TRAIN_DIR).scalars[tags.GLOBAL_GRADIENT_NORM]
    np.testing.assert_allclose(logged.values[-1], norm, rtol=1e-5)
    assert logged.steps[-1] == 8


def test_mirrored_mixed_precision_keeps_float32_where_it_must(tmp_path, mirrored_run):
    result = run_cli("train", *FLAGS, "--strategy", "mirrored", "--devices", "/cpu:0,/cpu:1",
                     "--mixed-precision", "--quiet", "--logdir", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = runs.run_dir(CONFIG.replace(mixed_precision=True), tmp_path)
    model = keras.saving.load_model(run_dir / runs.MODEL_FILE, compile=False, safe_mode=True)
    assert model.get_layer("dense_1").dtype_policy.name == "mixed_float16"
    assert model.get_layer("output").dtype_policy.name == "float32"
    assert {variable.dtype for variable in model.weights} == {"float32"}
    # float16 compute changes the losses only in the third digit.
    half = events.read_events(run_dir / runs.TRAIN_DIR).scalars[tags.BATCH_LOSS]
    full = events.read_events(mirrored_run / runs.TRAIN_DIR).scalars[tags.BATCH_LOSS]
    assert half.steps.tolist() == full.steps.tolist()
    np.testing.assert_allclose(half.values, full.values, rtol=1e-2)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for each in sockets:
            each.bind(("127.0.0.1", 0))
        return [each.getsockname()[1] for each in sockets]
    finally:
        for each in sockets:
            each.close()


def run_workers(args, tmp_path, count=2, expected_status=0):
    """Runs `reproduce ARGS --strategy multi_worker` as `count` loopback workers.

    Returns their pids and (stdout, stderr) pairs; every process is gone on return.
    """
    worker_tmp = tmp_path / "worker-tmp"
    worker_tmp.mkdir(exist_ok=True)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(count)]}
    workers = []
    try:
        for index in range(count):
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TMPDIR": str(worker_tmp),
                   "TF_CONFIG": json.dumps({"cluster": cluster,
                                            "task": {"type": "worker", "index": index}})}
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "reproduce.cli", *map(str, args),
                 "--strategy", "multi_worker"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
        outputs = [worker.communicate(timeout=WORKER_TIMEOUT_S) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for worker, (_, stderr) in zip(workers, outputs):
        assert worker.returncode == expected_status, stderr[-3000:]
    assert not list(worker_tmp.iterdir())  # the other workers' files are gone
    return [worker.pid for worker in workers], outputs


def test_two_loopback_workers_train_one_run_written_by_the_chief(tmp_path, mirrored_run):
    logdir = tmp_path / "logs"
    pids, outputs = run_workers(["train", *FLAGS, "--logdir", logdir], tmp_path)
    # Both workers trained the same model: the per-epoch logs printed by each agree.
    epoch_lines = [re.findall(r"loss: [0-9.]+ - val_accuracy: [0-9.]+ - val_loss: [0-9.]+", out)
                   for out, _ in outputs]
    assert len(epoch_lines[0]) == CONFIG.epochs and epoch_lines[0] == epoch_lines[1]

    run_dir = runs.run_dir(CONFIG, logdir)
    assert file_layout(run_dir) == file_layout(mirrored_run)  # one set of files
    assert event_file_pids(run_dir) == {pids[0]}  # all written by the chief
    marker = runs.read_marker(run_dir)
    assert marker.replicas == 2 and marker.workers == 2 and marker.steps == 8
    # Again: the chief refuses the completed run and the other worker stops too.
    _, refusals = run_workers(["train", *FLAGS, "--logdir", logdir], tmp_path, expected_status=2)
    assert "already complete; pass --overwrite" in refusals[0][1]
    assert "the chief worker stopped with an error" in refusals[1][1]
    assert runs.read_marker(run_dir) == marker
    # Same global batches, same weights as the mirrored run over two devices.
    mirrored = json.loads((mirrored_run / runs.HISTORY_FILE).read_text())
    history = json.loads((run_dir / runs.HISTORY_FILE).read_text())
    for name, values in mirrored.items():
        np.testing.assert_allclose(history[name], values, rtol=1e-5)


def test_multi_worker_sweep_skips_what_the_chief_has_and_trains_the_rest(tmp_path, mirrored_run):
    logdir = tmp_path / "logs"
    done = runs.run_dir(CONFIG, logdir)
    shutil.copytree(mirrored_run, done)
    before = {path: path.read_bytes() for path in done.rglob("*") if path.is_file()}
    sweep_file = tmp_path / "sweep.toml"
    sweep_file.write_text(
        f'experiment = "{CONFIG.experiment}"\n[grid]\nactivation = ["relu", "tanh"]\n[fixed]\n'
        + "".join(f"{name} = {getattr(CONFIG, name)}\n" for name in
                  ("depth", "width", "batch_size", "epochs", "samples", "steps_per_execution",
                   "probe_size")))
    pids, outputs = run_workers(["sweep", sweep_file, "--logdir", logdir], tmp_path)
    for stdout, _ in outputs:
        assert "relu-d2-w8-s0-bs=16-ep=2-n=80  already complete, skipped" in stdout
        assert "2 runs: 1 trained, 1 already complete, 0 failed" in stdout
    assert {path: path.read_bytes() for path in done.rglob("*") if path.is_file()} == before
    trained = runs.run_dir(CONFIG.replace(activation="tanh"), logdir)
    assert runs.read_marker(trained).replicas == 2
    assert event_file_pids(trained) == {pids[0]}
    assert runs.load_config(trained).strategy == "multi_worker"


@pytest.mark.parametrize("value, message", [
    ("{", "TF_CONFIG is not valid JSON"),
    ("[1, 2]", "TF_CONFIG must be a JSON object with cluster and task, got '[1, 2]'"),
    ('{"task": {"type": "worker", "index": 0}}', "TF_CONFIG needs a cluster"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}}', "TF_CONFIG needs this process's task"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "ps", "index": 0}}',
     "TF_CONFIG task type 'ps' is not in the cluster; choose from worker"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 5}}',
     "TF_CONFIG task index 5 is out of range; 'worker' has 1 task(s)"),
    ('{"cluster": {"workers": ["127.0.0.1:1"]}, "task": {"type": "workers", "index": 0}}',
     "TF_CONFIG cluster job 'workers' is unknown"),
    ('{"cluster": {"worker": ["node1"]}, "task": {"type": "worker", "index": 0}}',
     "TF_CONFIG cluster 'worker' must list host:port addresses, got ['node1']"),
])
def test_malformed_tf_config_is_one_error_line_before_anything_starts(tmp_path, value, message):
    result = subprocess.run(
        [sys.executable, "-m", "reproduce.cli", "train", "--strategy", "multi_worker",
         "--logdir", str(tmp_path / "logs")],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_CONFIG": value})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"reproduce train: error: {message}"), lines
    assert not (tmp_path / "logs").exists()
