import hashlib
import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from reproduce import datasets, runs
from reproduce.config import TEST_CONFIG
from reproduce.runs import events
from reproduce.training import models
from reproduce.training.trainer import _set_up_session, train


def test_run_folder_holds_every_file(tiny_run):
    path = tiny_run.run_dir
    assert path.name == "relu-d2-w8-s0-bs=16-ep=2-n=80"
    for name in ("config.json", "model.keras", "initial.weights.h5", "history.json",
                 "probe.npz", "COMPLETE"):
        assert (path / name).is_file(), name
    assert events.event_files(path / "train") and events.event_files(path / "validation")
    assert runs.load_config(path) == tiny_run.config
    marker = runs.read_marker(path)
    assert marker.status is runs.RunStatus.COMPLETE and marker.steps == 8 == tiny_run.steps
    assert marker.replicas == 1 and marker.devices[0].endswith("CPU:0")  # no GPU here
    assert marker.final["val_accuracy"] == tiny_run.history["val_accuracy"][-1]
    # The split it trained on, fingerprinted independently of datasets.fingerprint.
    split = datasets.load_dataset(TEST_CONFIG.replace(activation="relu"))
    digest = hashlib.sha256()
    for array in (split.x_train, split.y_train, split.x_val, split.y_val):
        digest.update(f"{array.dtype.str}{array.shape};".encode() + array.tobytes())
    assert marker.data_sha256 == digest.hexdigest()


def test_initial_weights_are_the_weights_before_the_first_update(tiny_run):
    initial = runs.load_model(tiny_run.run_dir, initial=True)
    split = datasets.load_dataset(tiny_run.config)
    built = models.build_model(tiny_run.config, split.input_dim, split.n_classes)
    for saved, expected in zip(initial.weights, built.weights):
        np.testing.assert_array_equal(saved.numpy(), expected.numpy())
    final = runs.load_model(tiny_run.run_dir)
    assert not np.array_equal(final.get_layer("dense_1").kernel.numpy(),
                              initial.get_layer("dense_1").kernel.numpy())


def test_history_json_is_keras_history(tiny_run):
    history = json.loads((tiny_run.run_dir / "history.json").read_text())
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(values) == TEST_CONFIG.epochs for values in history.values())


def test_epoch_scalars_in_train_and_validation(tiny_run):
    run = runs.read_run_events(tiny_run.run_dir)
    np.testing.assert_allclose(run.train.scalars["epoch_loss"].values,
                               tiny_run.history["loss"], rtol=1e-6)
    np.testing.assert_allclose(run.validation.scalars["epoch_loss"].values,
                               tiny_run.history["val_loss"], rtol=1e-6)


def test_probe_npz_is_plain_arrays(tiny_run):
    with np.load(tiny_run.run_dir / "probe.npz", allow_pickle=False) as probe:
        assert probe["x"].shape == (32, 2) and probe["y"].shape == (32, 1)


def test_saved_model_loads_in_fresh_process_without_our_code(tiny_run):
    code = (
        "import sys, keras, numpy as np\n"
        "model = keras.saving.load_model(sys.argv[1])\n"
        "assert model.optimizer is not None and model.compiled_loss is not None or True\n"
        "probe = np.load(sys.argv[2])\n"
        "print(float(model.evaluate(probe['x'], probe['y'], verbose=0)[0]))\n"
        "assert not any(name.startswith(('reproduce', 'callbacks')) for name in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tiny_run.run_dir / "model.keras"),
         str(tiny_run.run_dir / "probe.npz")],
        capture_output=True, text=True, cwd="/",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert np.isfinite(float(result.stdout.split()[-1]))


def _replay_batch_losses(config):
    """Per-batch losses of one epoch from a hand-written GradientTape loop."""
    _set_up_session(config)
    data = datasets.load_dataset(config)
    model = models.build_model(config, data.input_dim, data.n_classes)
    optimizer = models.make_optimizer(config)
    loss_fn = keras.losses.get(models.loss_name(data.n_classes))
    train_data, _ = datasets.make_pipelines(data, config.batch_size, config.seed)
    losses = []
    for x, y in train_data:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(loss_fn(y, model(x, training=True)))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        losses.append(float(loss))
    return np.array(losses)


@pytest.mark.parametrize("steps_per_execution", [1, 4])
def test_batch_loss_is_each_batch_own_loss(tmp_path, steps_per_execution):
    # 64 training examples in batches of 12: 6 steps, executions of 4 + 2 steps.
    config = TEST_CONFIG.replace(
        activation="tanh", epochs=1, batch_size=12, steps_per_execution=steps_per_execution)
    result = train(config, tmp_path, verbose=0)
    batch_loss = runs.read_run_events(result.run_dir).train.scalars["batch_loss"]
    assert batch_loss.steps.tolist() == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(batch_loss.values, _replay_batch_losses(config), rtol=1e-5)
    assert not np.allclose(batch_loss.values, batch_loss.values[0])


def test_batch_loss_same_with_jit_compile_and_steps_per_execution(tmp_path):
    config = TEST_CONFIG.replace(epochs=3, steps_per_execution=1)
    plain = train(config, tmp_path, verbose=0)
    compiled = train(config.replace(steps_per_execution=3, jit_compile=True,
                                    experiment="jit"), tmp_path, verbose=0)
    plain_loss = runs.read_run_events(plain.run_dir).train.scalars["batch_loss"]
    compiled_loss = runs.read_run_events(compiled.run_dir).train.scalars["batch_loss"]
    assert plain_loss.steps.tolist() == compiled_loss.steps.tolist() == list(range(1, 13))
    np.testing.assert_allclose(compiled_loss.values, plain_loss.values, rtol=1e-5)


def test_same_config_and_seed_give_identical_history(tmp_path):
    config = TEST_CONFIG.replace(activation="swish")
    first = train(config, tmp_path / "a", verbose=0)
    second = train(config, tmp_path / "b", verbose=0)
    assert (first.run_dir / "history.json").read_text() == (
        second.run_dir / "history.json").read_text()


def test_crashed_run_folder_is_replaced_with_warning(tmp_path):
    path = runs.run_dir(TEST_CONFIG, tmp_path)
    path.mkdir(parents=True)
    (path / "leftover.txt").write_text("partial")
    with pytest.warns(UserWarning, match="replacing incomplete run"):
        train(TEST_CONFIG, tmp_path, verbose=0)
    assert not (path / "leftover.txt").exists() and runs.is_complete(path)


def test_completed_run_is_not_overwritten_unless_asked(tiny_run):
    from reproduce.errors import RunExistsError

    logdir = tiny_run.run_dir.parents[2]
    before = (tiny_run.run_dir / "COMPLETE").read_text()
    with pytest.raises(RunExistsError, match="already complete; pass --overwrite"):
        train(tiny_run.config, logdir, verbose=0)
    assert (tiny_run.run_dir / "COMPLETE").read_text() == before
