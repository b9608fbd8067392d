"""The callbacks' logs, read back from the event files and checked independently."""

import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from callbacks import (ActivationLogger, BatchLossLogger, EpochLogger, GradientLogger,
                       StepRecorder, WeightLogger, summaries, tags)
from callbacks.probe_group import traced_functions
from reproduce import runs
from reproduce.config import TEST_CONFIG
from reproduce.runs import events
from reproduce.training.trainer import train

VARIABLES = [f"{layer}/{kind}" for layer in ("dense_1", "dense_2", "output")
             for kind in ("kernel", "bias")]
ACTS = ["act_1", "act_2"]


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory):
    return train(TEST_CONFIG.replace(activation="linear"), tmp_path_factory.mktemp("logs"),
                 verbose=0)


@pytest.fixture(scope="module")
def dead_relu_run(tmp_path_factory):
    # A large step with He initialisation kills some ReLU units of this tiny net.
    config = TEST_CONFIG.replace(activation="relu", learning_rate=0.3, initializer="he_normal",
                                 epochs=3)
    return train(config, tmp_path_factory.mktemp("logs"), verbose=0)


def _load(run):
    model = keras.saving.load_model(run.run_dir / "model.keras")
    with np.load(run.run_dir / "probe.npz", allow_pickle=False) as probe:
        return model, probe["x"], probe["y"]


def test_exact_set_of_tags_for_two_layer_model(tiny_run):
    train_events = runs.read_run_events(tiny_run.run_dir).train
    expected_scalars = {"batch_loss", "epoch_loss", "epoch_accuracy", "epoch_learning_rate",
                        tags.GLOBAL_GRADIENT_NORM}
    for kind in (tags.GRADIENT_NORM, tags.WEIGHT_NORM, tags.UPDATE_RATIO):
        expected_scalars |= {f"{kind}/{key}" for key in VARIABLES}
    for kind in (tags.DEAD_FRACTION, tags.SATURATED_FRACTION):
        expected_scalars |= {f"{kind}/{act}" for act in ACTS}
    expected_histograms = {f"{kind}/{key}" for kind in (tags.GRADIENTS, tags.WEIGHTS)
                           for key in VARIABLES}
    expected_histograms |= {f"{kind}/{act}" for act in ACTS for kind in (
        tags.PREACTIVATIONS, tags.ACTIVATIONS, tags.ACTIVATION_DERIVATIVE,
        tags.BACKPROP_GRADIENTS)}
    assert set(train_events.scalars) == expected_scalars
    assert set(train_events.histograms) == expected_histograms


def test_logs_at_step_zero_and_end(tiny_run):
    train_events = runs.read_run_events(tiny_run.run_dir).train
    for tag in (tags.GLOBAL_GRADIENT_NORM, "weight_norm/dense_1/kernel", "dead_fraction/act_1"):
        steps = train_events.scalars[tag].steps
        assert steps[0] == 0 and steps[-1] == tiny_run.steps and len(set(steps)) == len(steps)
    # The relative update needs a previous log, so it starts at the second one.
    ratio_steps = train_events.scalars["update_ratio/dense_1/kernel"].steps
    assert ratio_steps[0] > 0 and ratio_steps[-1] == tiny_run.steps


def test_final_gradients_equal_independent_gradient_tape(tiny_run):
    model, x, y = _load(tiny_run)
    with tf.GradientTape() as tape:
        loss = keras.losses.BinaryCrossentropy()(y, model(x, training=False))
    gradients = tape.gradient(loss, model.trainable_variables)
    train_events = runs.read_run_events(tiny_run.run_dir).train
    for variable, gradient in zip(model.trainable_variables, gradients):
        logged = train_events.scalars[f"gradient_norm/{variable.path}"]
        np.testing.assert_allclose(logged.values[-1], np.linalg.norm(gradient), rtol=1e-5)
    global_norm = np.sqrt(sum(np.sum(np.square(gradient)) for gradient in gradients))
    np.testing.assert_allclose(
        train_events.scalars[tags.GLOBAL_GRADIENT_NORM].values[-1], global_norm, rtol=1e-5)

    kernel_gradient = gradients[0].numpy()
    histogram = train_events.histograms["gradients/dense_1/kernel"].at(tiny_run.steps)
    assert histogram.shape == (30, 3)
    assert histogram[:, 2].sum() == kernel_gradient.size
    np.testing.assert_allclose(histogram[0, 0], kernel_gradient.min(), rtol=1e-5)
    np.testing.assert_allclose(histogram[-1, 1], kernel_gradient.max(), rtol=1e-5)


def test_final_weights_and_activations_match_saved_model(tiny_run):
    model, x, _ = _load(tiny_run)
    train_events = runs.read_run_events(tiny_run.run_dir).train
    kernel = model.get_layer("dense_2").kernel.numpy()
    np.testing.assert_allclose(
        train_events.scalars["weight_norm/dense_2/kernel"].values[-1],
        np.linalg.norm(kernel), rtol=1e-5)
    z = keras.Model(model.input, model.get_layer("dense_1").output)(x).numpy()
    histogram = train_events.histograms["preactivations/act_1"].at(tiny_run.steps)
    assert histogram[:, 2].sum() == z.size
    np.testing.assert_allclose([histogram[0, 0], histogram[-1, 1]], [z.min(), z.max()],
                               rtol=1e-5)


def test_linear_activation_derivative_is_exactly_one_everywhere(linear_run):
    train_events = runs.read_run_events(linear_run.run_dir).train
    for act in ACTS:
        series = train_events.histograms[f"activation_derivative/{act}"]
        assert len(series.steps) >= 2
        for buckets in series.buckets:
            # Constant data: every bucket has left == right == 1.0.
            np.testing.assert_array_equal(buckets[:, :2], 1.0)
            assert buckets[:, 2].sum() == TEST_CONFIG.probe_size * TEST_CONFIG.width
        assert set(train_events.scalars[f"dead_fraction/{act}"].values) == {0.0}
        assert set(train_events.scalars[f"saturated_fraction/{act}"].values) == {0.0}


def test_relu_dead_fraction_equals_numpy_on_probe(dead_relu_run):
    model, x, _ = _load(dead_relu_run)
    train_events = runs.read_run_events(dead_relu_run.run_dir).train
    fractions = []
    for index in (1, 2):
        z = keras.Model(model.input, model.get_layer(f"dense_{index}").output)(x).numpy()
        expected = np.mean(np.all(z <= 0, axis=0))
        logged = train_events.scalars[f"dead_fraction/act_{index}"].values[-1]
        assert logged == pytest.approx(expected, abs=1e-7)
        fractions.append(expected)
        derivative = (z > 0).astype(np.float32)
        saturated = np.mean(derivative < 0.01 * derivative.max())
        assert train_events.scalars[f"saturated_fraction/act_{index}"].values[-1] == (
            pytest.approx(saturated, abs=1e-7))
    assert max(fractions) > 0, "the configuration is meant to have dead units"


@pytest.mark.parametrize("steps_per_execution, expected_steps", [
    (1, [0, 2, 4, 6, 8, 10, 12]),
    # 4 steps per epoch: executions end at 4, 8, 12, the first batch ends past each multiple of 2.
    (8, [0, 4, 8, 12]),
])
def test_logged_steps_are_optimizer_steps(tmp_path, steps_per_execution, expected_steps):
    config = TEST_CONFIG.replace(epochs=3, log_every=2, steps_per_execution=steps_per_execution)
    result = train(config, tmp_path, verbose=0)
    train_events = runs.read_run_events(result.run_dir).train
    assert result.steps == 12
    for tag in (tags.GLOBAL_GRADIENT_NORM, "weight_norm/output/bias", "dead_fraction/act_2"):
        assert train_events.scalars[tag].steps.tolist() == expected_steps
    assert train_events.histograms["gradients/dense_1/kernel"].steps.tolist() == expected_steps
    assert train_events.scalars["batch_loss"].steps.tolist() == list(range(1, 13))


def test_same_values_whatever_steps_per_execution(tmp_path):
    config = TEST_CONFIG.replace(epochs=3, log_every=4)
    one = train(config.replace(steps_per_execution=1), tmp_path / "a", verbose=0)
    eight = train(config.replace(steps_per_execution=8), tmp_path / "b", verbose=0)
    first = runs.read_run_events(one.run_dir).train.scalars[tags.GLOBAL_GRADIENT_NORM]
    second = runs.read_run_events(eight.run_dir).train.scalars[tags.GLOBAL_GRADIENT_NORM]
    assert first.steps.tolist() == second.steps.tolist() == [0, 4, 8, 12]
    np.testing.assert_allclose(first.values, second.values, rtol=1e-5)


@pytest.mark.parametrize("policy", ["float32", "mixed_float16"])
def test_epoch_logger_writes_what_keras_tensorboard_writes(tmp_path, policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"),
                                  keras.layers.Dense(1, activation="sigmoid", dtype="float32")])
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy",
                      metrics=["accuracy"], steps_per_execution=4)
        x = np.random.default_rng(0).normal(size=(40, 3)).astype("float32")
        y = (x[:, :1] > 0).astype("float32")
        model.fit(x, y, batch_size=8, epochs=3, validation_data=(x[:16], y[:16]), verbose=0,
                  callbacks=[keras.callbacks.TensorBoard(str(tmp_path / "keras"),
                                                         write_graph=False),
                             EpochLogger(tmp_path / "ours")])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    for folder in ("train", "validation"):
        expected = events.read_events(tmp_path / "keras" / folder).scalars
        logged = events.read_events(tmp_path / "ours" / folder).scalars
        assert set(logged) == set(expected) and len(logged) >= 3
        for tag, scalars in expected.items():
            assert logged[tag].steps.tolist() == scalars.steps.tolist(), tag
            assert logged[tag].values.tolist() == scalars.values.tolist(), tag
    assert events.read_events(tmp_path / "ours" / "validation").scalars[
        "evaluation_loss_vs_iterations"].steps.tolist() == [5, 10, 15]


def test_mixed_precision_logs_float32_values(tmp_path):
    result = train(TEST_CONFIG.replace(mixed_precision=True), tmp_path, verbose=0)
    train_events = runs.read_run_events(result.run_dir).train
    assert np.all(np.isfinite(train_events.scalars[tags.GLOBAL_GRADIENT_NORM].values))
    histogram = train_events.histograms["activations/act_1"].at(result.steps)
    assert histogram[:, 2].sum() == TEST_CONFIG.probe_size * TEST_CONFIG.width
    assert np.all(np.isfinite(train_events.scalars[tags.BATCH_LOSS].values))
    keras.mixed_precision.set_global_policy("float32")
    # float16 compute, float32 variables and output layer in the saved model.
    model = keras.saving.load_model(result.run_dir / "model.keras", compile=False, safe_mode=True)
    assert model.get_layer("dense_1").dtype_policy.name == "mixed_float16"
    assert model.get_layer("output").dtype_policy.name == "float32"
    assert {variable.dtype for variable in model.weights} == {"float32"}


def test_jit_compiled_training_still_logs_everything(tmp_path):
    result = train(TEST_CONFIG.replace(jit_compile=True), tmp_path, verbose=0)
    train_events = runs.read_run_events(result.run_dir).train
    assert train_events.histograms["gradients/dense_1/kernel"].steps[-1] == result.steps
    assert train_events.scalars["batch_loss"].steps.tolist() == list(range(1, result.steps + 1))


def _small_model():
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(5, activation="relu", name="hidden")(inputs)
    reshaped = keras.layers.Reshape((5, 1))(hidden)
    conv = keras.layers.Conv1D(2, 3, activation="tanh", name="conv")(reshaped)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="output")(
        keras.layers.Flatten()(conv))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=StepRecorder("sgd"), loss="binary_crossentropy")
    return model


def _toy_data(count=32):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(count, 3)).astype("float32")
    return x, (x[:, :1] > 0).astype("float32")


def test_activation_logger_logs_dense_and_conv_layers_with_their_own_activation(tmp_path):
    keras.utils.set_random_seed(0)
    model = _small_model()
    x, y = _toy_data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every layer is supported: no warning
        model.fit(x, y, epochs=1, batch_size=8, verbose=0,
                  callbacks=[ActivationLogger(tmp_path, probe=(x, y))])
    train_events = events.read_events(tmp_path / "train")
    assert set(train_events.histograms) == {
        f"{kind}/{layer}" for kind in ("preactivations", "activations", "activation_derivative",
                                       "backprop_gradients") for layer in ("hidden", "conv")}
    layer = model.get_layer("hidden")
    z = x @ layer.kernel.numpy() + layer.bias.numpy()
    histogram = train_events.histograms["preactivations/hidden"].at(4)
    np.testing.assert_allclose([histogram[0, 0], histogram[-1, 1]], [z.min(), z.max()],
                               rtol=1e-5)
    assert train_events.scalars["dead_fraction/hidden"].at(4) == pytest.approx(
        np.mean(np.all(z <= 0, axis=0)))
    conv = model.get_layer("conv")
    conv_z = keras.ops.conv(np.maximum(z, 0)[:, :, None], conv.kernel) + conv.bias
    histogram = train_events.histograms["preactivations/conv"].at(4)
    assert histogram[:, 2].sum() == conv_z.shape[0] * 3 * 2
    np.testing.assert_allclose([histogram[0, 0], histogram[-1, 1]],
                               [np.min(conv_z), np.max(conv_z)], rtol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"every_n_steps": 0}, r"`every_n_steps` must be a positive integer.*every_n_steps=0"),
    ({"every_n_steps": 2.5}, r"every_n_steps=2.5"),
    ({"histogram_buckets": 0}, r"histogram_buckets=0"),
    ({"probe": np.zeros((4, 3))}, r"`probe` must be a pair \(x, y\)"),
    ({"probe": (np.zeros((4, 3)), np.zeros((5, 1)))},
     r"same number of examples.*\(4, 3\).*\(5, 1\)"),
    ({"probe": (np.zeros(4), np.zeros(4))}, r"shape \(examples, features...\)"),
    ({"probe": np.zeros((4, 3))}, r"received: ndarray of shape \(4, 3\)"),
    ({"probe": {"x": np.zeros((4, 3))}}, r"must be a pair.*received: dict with keys \['x'\]"),
    ({"probe": iter([(np.zeros((4, 3)), np.zeros(4))])}, r"received: list_iterator"),
    ({"probe": (np.zeros((4, 3)), None)}, r"`y` is needed for the loss, received y=None"),
    ({"probe": ({"a": np.zeros((4, 3))}, [np.zeros((4, 1)), np.zeros((5, 1))])},
     r"same number of examples, received x\['a'\] shape \(4, 3\) and y\[1\] shape \(5, 1\)"),
    ({"probe": tf.data.Dataset.from_tensor_slices(np.zeros((4, 3))).batch(2)},
     r"dataset must yield batches \(x, y\).*received an element: ndarray of shape \(2, 3\)"),
    ({"probe": tf.data.Dataset.from_tensor_slices((np.zeros((0, 3)), np.zeros(0))).batch(2)},
     r"dataset yielded no example"),
])
def test_invalid_arguments_fail_early(kwargs, message):
    arguments = {"log_dir": "unused", "probe": _toy_data(), **kwargs}
    for logger in (GradientLogger, WeightLogger, ActivationLogger):
        with pytest.raises(ValueError, match=message):
            logger(**arguments)


def test_probe_of_wrong_feature_shape_is_refused_at_fit(tmp_path):
    model = _small_model()
    x, y = _toy_data()
    with pytest.raises(ValueError, match=r"example shape \(4,\) but .* expects \(3,\)"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[
            GradientLogger(tmp_path, probe=(np.zeros((8, 4)), y[:8]))])
    assert not (tmp_path / "train").exists()


def test_probe_of_nested_arrays_keeps_the_same_examples_of_every_array():
    x, y = _toy_data(100)
    logger = GradientLogger("unused", probe=({"a": x, "b": [x * 2]}, (y, y * 3), y[:, 0] + 1),
                            probe_size=10, seed=1)
    probe = logger.probe
    np.testing.assert_array_equal(probe.x["b"][0], 2 * probe.x["a"])
    np.testing.assert_array_equal(probe.y[1], 3 * probe.y[0])
    np.testing.assert_array_equal(probe.sample_weight, probe.y[0][:, 0] + 1)
    np.testing.assert_array_equal(probe.x["a"], GradientLogger(
        "unused", probe=(x, y), probe_size=10, seed=1).probe_x)


def test_probe_of_a_dataset_takes_its_first_examples_across_batches():
    x, y = _toy_data(20)
    dataset = tf.data.Dataset.from_tensor_slices(({"a": x}, y)).batch(6)
    probe = GradientLogger("unused", probe=dataset, probe_size=14).probe
    np.testing.assert_array_equal(probe.x["a"], x[:14])
    np.testing.assert_array_equal(probe.y, y[:14])
    assert probe.sample_weight is None


def test_probe_longer_than_probe_size_is_subsampled_by_seed():
    x, y = _toy_data(100)
    first = GradientLogger("unused", probe=(x, y), probe_size=10, seed=1)
    again = GradientLogger("unused", probe=(x, y), probe_size=10, seed=1)
    assert first.probe_x.shape == (10, 3)
    np.testing.assert_array_equal(first.probe_x, again.probe_x)


def test_callbacks_reused_on_second_fit_leave_first_logs_intact(tmp_path):
    keras.utils.set_random_seed(0)
    model = _small_model()
    x, y = _toy_data()
    loggers = [BatchLossLogger(tmp_path),
               GradientLogger(tmp_path, probe=(x, y), every_n_steps=4),
               WeightLogger(tmp_path, probe=(x, y), every_n_steps=4)]
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=loggers)
    first_files = {path: path.read_bytes() for path in events.event_files(tmp_path / "train")}
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=loggers)
    assert all(path.read_bytes() == data for path, data in first_files.items())
    assert len(events.event_files(tmp_path / "train")) == 2 * len(first_files)
    train_events = events.read_events(tmp_path / "train")
    assert train_events.scalars["batch_loss"].steps.tolist() == list(range(1, 9))
    assert train_events.scalars[tags.GLOBAL_GRADIENT_NORM].steps.tolist() == [0, 4, 4, 8]
    # The plain train step is back after fit: no capture is left on the optimizer.
    assert model.optimizer.listeners == ()


def _first_global_gradient_norm(log_dir) -> float:
    """The global gradient norm logged at the start of the fit that wrote `log_dir`."""
    return events.read_events(log_dir / "train").scalars[tags.GLOBAL_GRADIENT_NORM].values[0]


def _tape_global_gradient_norm(model, x, y) -> float:
    with tf.GradientTape() as tape:
        loss = model.compute_loss(x=x, y=y, y_pred=model(x, training=False), training=False)
    gradients = tape.gradient(loss, model.trainable_variables)
    return float(tf.linalg.global_norm(gradients))


def test_later_fits_reuse_the_traced_functions_with_their_own_probe(tmp_path):
    keras.utils.set_random_seed(0)
    model = _small_model()
    x, y = _toy_data(64)
    first, second = (x[:32], y[:32]), (x[32:], y[32:])  # probes of the same shapes
    logged = {}
    for name, probe in (("first", first), ("second", second)):
        expected = _tape_global_gradient_norm(model, *probe)
        loggers = [BatchLossLogger(tmp_path / name, keep_capture=True),
                   GradientLogger(tmp_path / name, probe=probe),
                   WeightLogger(tmp_path / name, probe=probe),
                   ActivationLogger(tmp_path / name, probe=probe)]
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=loggers)
        np.testing.assert_allclose(_first_global_gradient_norm(tmp_path / name), expected,
                                   rtol=1e-5)
        logged[name] = events.read_events(tmp_path / name / "train")
        if name == "first":
            train_function = model.train_function
            probe_functions = dict(traced_functions(model))
    assert model.train_function is train_function  # the step with the loss capture, kept
    assert traced_functions(model) == probe_functions  # one trace for the three loggers
    assert len(probe_functions) == 1
    assert logged["second"].tags == logged["first"].tags
    assert logged["second"].scalars["batch_loss"].steps.tolist() == list(range(9, 17))
    # A new compile (another loss) is a new trace, of the new loss.
    model.compile(optimizer="sgd", loss="mse")
    expected = _tape_global_gradient_norm(model, *second)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0,
              callbacks=[GradientLogger(tmp_path / "mse", probe=second)])
    np.testing.assert_allclose(_first_global_gradient_norm(tmp_path / "mse"), expected,
                               rtol=1e-5)
    assert len(traced_functions(model)) == 2


def test_loggers_of_one_fit_share_one_call_and_log_what_each_logs_alone(tmp_path):
    x, y = _toy_data()
    kinds = (GradientLogger, WeightLogger, ActivationLogger)

    def fit(log_dir, loggers):
        keras.utils.set_random_seed(0)
        model = _small_model()
        model.fit(x, y, epochs=2, batch_size=8, verbose=0,
                  callbacks=[logger(log_dir, probe=(x, y), every_n_steps=3) for logger in loggers])
        return model, events.read_events(log_dir / "train")

    model, together = fit(tmp_path / "together", kinds)
    assert len(traced_functions(model)) == 1  # one group: one traced function
    assert together.scalars[tags.GLOBAL_GRADIENT_NORM].steps.tolist() == [0, 3, 6, 8]
    for kind in kinds:
        _, alone = fit(tmp_path / kind.__name__, [kind])
        assert set(alone.tags) <= set(together.tags)
        for tag, series in alone.scalars.items():
            assert together.scalars[tag].steps.tolist() == series.steps.tolist()
            np.testing.assert_allclose(together.scalars[tag].values, series.values, rtol=1e-5,
                                       atol=1e-7)
        for tag, series in alone.histograms.items():
            np.testing.assert_allclose(together.histograms[tag].buckets, series.buckets,
                                       rtol=1e-5, atol=1e-7)
    # Different schedules are different groups.
    keras.utils.set_random_seed(0)
    model = _small_model()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[
        GradientLogger(tmp_path / "apart", probe=(x, y), every_n_steps=2),
        WeightLogger(tmp_path / "apart", probe=(x, y), every_n_steps=3)])
    assert len(traced_functions(model)) == 2
    apart = events.read_events(tmp_path / "apart" / "train")
    assert apart.scalars[tags.GLOBAL_GRADIENT_NORM].steps.tolist() == [0, 2, 4]
    assert apart.scalars["weight_norm/hidden/kernel"].steps.tolist() == [0, 3, 4]


def test_kept_capture_is_replaced_when_steps_per_execution_changes(tmp_path):
    keras.utils.set_random_seed(0)
    model = _small_model()
    x, y = _toy_data()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0,
              callbacks=[BatchLossLogger(tmp_path / "a", keep_capture=True)])
    [kept] = model.optimizer.listeners
    model.compile(optimizer=model.optimizer, loss="binary_crossentropy", steps_per_execution=2)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0,
              callbacks=[BatchLossLogger(tmp_path / "b")])
    losses = events.read_events(tmp_path / "b" / "train").scalars["batch_loss"]
    assert losses.steps.tolist() == [5, 6, 7, 8]  # the same optimizer counts on
    assert kept.capacity == 1 and model.optimizer.listeners == ()  # not kept this time


MIRRORED_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    import keras
    from callbacks import ActivationLogger, BatchLossLogger, GradientLogger, WeightLogger
    from reproduce import datasets
    from reproduce.training import models
    from reproduce.config import TEST_CONFIG
    # Keras 3.15 itself fails under MirroredStrategy with steps_per_execution > 1.
    config = TEST_CONFIG.replace(steps_per_execution=1)
    log_dir = sys.argv[1]
    keras.utils.set_random_seed(0)
    data = datasets.load_dataset(TEST_CONFIG)
    probe = datasets.make_probe(data, 32, 0)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        model = models.build_model(config, data.input_dim, data.n_classes)
        models.compile_model(model, config, data.n_classes)
    model.fit(data.x_train, data.y_train, batch_size=16, epochs=2, verbose=0, shuffle=False,
              callbacks=[BatchLossLogger(log_dir), GradientLogger(log_dir, probe=probe),
                         WeightLogger(log_dir, probe=probe),
                         ActivationLogger(log_dir, probe=probe)])
    model.save(log_dir + "/model.keras")
    np.savez(log_dir + "/probe.npz", x=probe[0], y=probe[1])
    np.save(log_dir + "/x.npy", data.x_train)
    np.save(log_dir + "/y.npy", data.y_train)
""")


def test_mirrored_strategy_writes_one_copy_of_each_summary(tmp_path):
    result = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    train_events = events.read_events(tmp_path / "train")
    for series in [*train_events.scalars.values(), *train_events.histograms.values()]:
        assert len(set(series.steps.tolist())) == len(series.steps)
    assert train_events.scalars["batch_loss"].steps.tolist() == list(range(1, 9))
    model = keras.saving.load_model(tmp_path / "model.keras")
    probe = np.load(tmp_path / "probe.npz")
    with tf.GradientTape() as tape:
        loss = keras.losses.BinaryCrossentropy()(probe["y"], model(probe["x"]))
    gradients = tape.gradient(loss, model.trainable_variables)
    norm = np.sqrt(sum(np.sum(np.square(gradient)) for gradient in gradients))
    np.testing.assert_allclose(
        train_events.scalars[tags.GLOBAL_GRADIENT_NORM].values[-1], norm, rtol=1e-5)
    # Step 1's loss is the first global batch's (both replicas' halves) under the initial weights.
    from reproduce.training import models

    x, y = np.load(tmp_path / "x.npy"), np.load(tmp_path / "y.npy")
    initial = models.build_model(TEST_CONFIG, x.shape[1], 2)
    first_loss = keras.losses.BinaryCrossentropy()(y[:16], initial(x[:16]))
    np.testing.assert_allclose(train_events.scalars["batch_loss"].values[0], first_loss, rtol=1e-5)


def test_histograms_match_tensorboard_reference_implementation():
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.histogram import summary_v2
    from tensorboard.util import tensor_util

    rng = np.random.default_rng(0)
    tensors = [rng.normal(size=(256, 32)), rng.uniform(-3, 5, size=(7,)),
               np.full((4, 5), 1.0), rng.exponential(size=(33, 2)), np.array([-2.5]),
               np.full((3,), -1e9), rng.normal(size=(64, 8, 8, 17)), np.full((300, 300), 2.0)]
    constants = [tf.constant(tensor, tf.float32) for tensor in tensors]
    flat = summaries.Flat.of(constants)
    ours = summaries.histograms(constants, 30).numpy()
    for index, tensor in enumerate(tensors):
        reference = summary_v2.histogram_pb("t", tensor.astype(np.float32), buckets=30)
        value = summary_pb2.Summary.FromString(reference.SerializeToString()).value[0]
        expected = tensor_util.make_ndarray(value.tensor)
        np.testing.assert_allclose(ours[index][:, :2], expected[:, :2], rtol=1e-6, atol=1e-6)
        stride = summaries.sample_stride(tf.TensorShape(tensor.shape))
        if stride == 1:
            np.testing.assert_array_equal(ours[index][:, 2], expected[:, 2])
        else:  # counted on a sample: each bucket within 5 standard deviations
            np.testing.assert_allclose(ours[index][:, 2].sum(), tensor.size, rtol=1e-12)
            deviation = np.abs(ours[index][:, 2] - expected[:, 2])
            assert np.all(deviation <= 5 * np.sqrt(stride * expected[:, 2]) + stride)
    # float32 sums of tens of thousands of squares are exact to about 5e-6.
    np.testing.assert_allclose(flat.norms().numpy(),
                               [np.linalg.norm(tensor) for tensor in tensors], rtol=1e-5)


def test_tensors_of_one_size_bucketed_as_rows_get_the_counts_of_the_segment_path():
    rng = np.random.default_rng(1)
    tensors = [rng.normal(size=(64, 32)), rng.uniform(-1e-6, 1e-6, size=(64, 32)),
               np.full((64, 32), 3.0), rng.exponential(size=(64, 32)) * 1e30,
               rng.normal(size=(64, 32)), rng.normal(size=(64, 32))]
    tensors[4][5, 7], tensors[5][0, 0] = np.nan, -np.inf
    parts = [tf.reshape(tf.constant(tensor, tf.float32), [-1]) for tensor in tensors]
    assert len(parts) * parts[0].shape[0] >= summaries.ROWS_MIN_ENTRIES
    rows = summaries._histograms_of_rows(parts, 30).numpy()
    segments = summaries._histograms_together(parts, 30).numpy()
    np.testing.assert_array_equal(rows, segments)  # NaN edges equal too
    mixed = summaries.histograms([*parts, tf.constant([1.0, 2.0]), parts[0][:10]], 30).numpy()
    np.testing.assert_array_equal(mixed[:len(parts)], rows)


def test_histogram_of_a_large_tensor_samples_every_channel_alike():
    # Channel c holds the value c. A stride sharing a factor with the 32 channels (8) would
    # count only some channels; the sampled histogram counts each 1/32 of the entries.
    shape = (256, 8, 8, 32)
    stride = summaries.sample_stride(tf.TensorShape(shape))
    assert stride == 11 and np.prod(shape) / stride <= summaries.SAMPLE_SIZE
    tensor = np.broadcast_to(np.arange(32, dtype=np.float32), shape)
    ours = summaries.histograms([tf.constant(tensor)], 32).numpy()[0]
    assert (ours[0, 0], ours[-1, 1]) == (0.0, 31.0)  # the exact range
    np.testing.assert_allclose(ours[:, 2], tensor.size / 32, atol=stride)


# Bucketed together, apart, or apart on a sample that misses the NaN.
@pytest.mark.parametrize("size", [3, summaries.SMALL + 1, summaries.SAMPLE_SIZE * 13])
def test_histogram_of_a_tensor_with_nan_or_infinity_has_nan_edges(size):
    values = np.linspace(0.0, 1.0, size).astype(np.float32)
    with_nan, with_infinity = values.copy(), values.copy()
    with_nan[1], with_infinity[0] = np.nan, np.inf
    ours = summaries.histograms([tf.constant(with_nan), tf.constant(with_infinity),
                                 tf.constant(values)], 4).numpy()
    for buckets in ours[:2]:  # sampled or not, the NaN and the infinity are found
        assert np.all(np.isnan(buckets[:, :2]))
        np.testing.assert_allclose(buckets[:, 2].sum(), size, rtol=1e-12)
    np.testing.assert_allclose(ours[2][:, 2].sum(), size, rtol=1e-12)
    assert ours[2][0, 0] == 0.0 and ours[2][-1, 1] == 1.0


def test_histogram_on_host_gets_the_buckets_of_the_device_path():
    rng = np.random.default_rng(2)
    tensors = [rng.normal(size=(256, 32)), rng.uniform(-3, 5, size=(7,)), np.full((4, 5), 1.0),
               rng.exponential(size=(33, 2)) * 1e-30, np.array([-2.5]), np.full((3,), -1e9)]
    device = summaries.histograms([tf.constant(tensor, tf.float32) for tensor in tensors],
                                  30).numpy()
    for tensor, expected in zip(tensors, device):
        np.testing.assert_array_equal(summaries.histogram_on_host(tensor, 30), expected)
    for bad in (np.array([0.0, np.nan, 1.0]), np.array([np.inf, 0.0, 1.0])):
        buckets = summaries.histogram_on_host(bad, 4)
        assert np.all(np.isnan(buckets[:, :2])) and buckets[:, 2].sum() == 3
    # A large tensor from its lattice sample and exact range: the range kept, counts scaled.
    large = rng.normal(size=(300, 300)).astype(np.float32)
    stride = summaries.sample_stride(tf.TensorShape(large.shape))
    sample = large.reshape(-1)[::stride]
    buckets = summaries.histogram_on_host(sample, 30, size=large.size,
                                          value_range=(large.min(), large.max(), True))
    assert (buckets[0, 0], buckets[-1, 1]) == (large.min(), large.max())
    np.testing.assert_allclose(buckets[:, 2].sum(), large.size, rtol=1e-12)
    reference = np.histogram(large, 30, (large.min(), large.max()))[0]
    assert np.all(np.abs(buckets[:, 2] - reference) <= 5 * np.sqrt(stride * reference) + stride)
