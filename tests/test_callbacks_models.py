"""The four callbacks on the kinds of Keras models users bring, through a real `fit`.

Each test reads the event files back and checks the exact set of tags, and
the final gradient norms against an independent `tf.GradientTape` over
`model.compute_loss` in inference mode (rtol 1e-5).
"""

import importlib.util
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from callbacks import (ActivationLogger, BatchLossLogger, GradientLogger, StepRecorder,
                       WeightLogger, make_probe, tags)
from callbacks.activation_logger import dead_fractions
from reproduce import runs
from reproduce.runs import events

HISTOGRAM_KINDS = ("preactivations", "activations", "activation_derivative", "backprop_gradients")


@pytest.fixture(autouse=True)
def fresh_session():
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)


def fit_with_loggers(model, x, y, log_dir, probe=None, warns=None, **fit_options):
    """Fits with all four callbacks writing into `log_dir`; returns the `train/` events.

    Supported models warn about nothing; else `warns` matches the one warning.
    """
    probe = (x, y) if probe is None else probe
    with (warnings.catch_warnings() if warns is None else pytest.warns(UserWarning, match=warns)):
        if warns is None:
            warnings.simplefilter("error", UserWarning)
        model.fit(x, y, verbose=0, callbacks=[
            BatchLossLogger(log_dir), GradientLogger(log_dir, probe=probe),
            WeightLogger(log_dir, probe=probe), ActivationLogger(log_dir, probe=probe),
        ], **{"epochs": 1, "batch_size": 16, **fit_options})
    return events.read_events(log_dir / "train")


def expected_tags(variables, activations):
    """The (scalar, histogram) tags of the four callbacks for these variable keys and layers."""
    scalars = {tags.BATCH_LOSS, tags.GLOBAL_GRADIENT_NORM}
    scalars |= {f"{kind}/{key}" for key in variables
                for kind in (tags.GRADIENT_NORM, tags.WEIGHT_NORM, tags.UPDATE_RATIO)}
    scalars |= {f"{kind}/{layer}" for layer in activations
                for kind in (tags.DEAD_FRACTION, tags.SATURATED_FRACTION)}
    histograms = {f"{kind}/{key}" for key in variables for kind in (tags.GRADIENTS, tags.WEIGHTS)}
    histograms |= {f"{kind}/{layer}" for layer in activations for kind in HISTOGRAM_KINDS}
    return scalars, histograms


def assert_exact_tags(train_events, variables, activations):
    scalars, histograms = expected_tags(variables, activations)
    assert set(train_events.scalars) == scalars
    assert set(train_events.histograms) == histograms


def tape_gradients(model, x, y, sample_weight=None):
    """dLoss/dW by an independent tape over the loss `fit` minimises, in inference mode."""
    with tf.GradientTape() as tape:
        loss = model.compute_loss(x=x, y=y, y_pred=model(x, training=False),
                                  sample_weight=sample_weight, training=False)
    return tape.gradient(loss, model.trainable_variables)


def assert_final_gradients_match(model, train_events, x, y, sample_weight=None):
    gradients = [tf.convert_to_tensor(gradient).numpy()
                 for gradient in tape_gradients(model, x, y, sample_weight)]
    for variable, gradient in zip(model.trainable_variables, gradients):
        logged = train_events.scalars[f"{tags.GRADIENT_NORM}/{variable.path}"].values[-1]
        np.testing.assert_allclose(logged, np.linalg.norm(gradient), rtol=1e-5,
                                   err_msg=variable.path)
    global_norm = np.sqrt(sum(np.sum(np.square(gradient)) for gradient in gradients))
    np.testing.assert_allclose(train_events.scalars[tags.GLOBAL_GRADIENT_NORM].values[-1],
                               global_norm, rtol=1e-5)
    return global_norm


def toy_data(count=48, features=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(count, features)).astype("float32")
    return x, (x[:, :1] + x[:, 1:2] > 0).astype("float32")


def hidden_range(train_events, kind, layer):
    """(min, max) of the final histogram of `kind/layer`."""
    buckets = train_events.histograms[f"{kind}/{layer}"].buckets[-1]
    return buckets[0, 0], buckets[-1, 1]


class TwoLayer(keras.Model):
    """A subclassed model: no `inputs`, layers as attributes, Dropout driven by `training`."""

    def __init__(self):
        super().__init__(name="two_layer")
        self.hidden = keras.layers.Dense(8, activation="tanh", name="hidden")
        self.dropout = keras.layers.Dropout(0.5)
        self.out = keras.layers.Dense(1, activation="sigmoid", name="out")

    def call(self, x, training=False):
        return self.out(self.dropout(self.hidden(x), training=training))


@pytest.mark.parametrize("built", [False, True])
def test_subclassed_model_built_or_not_when_fit_starts(tmp_path, built):
    x, y = toy_data()
    model = TwoLayer()
    if built:
        model(x[:1])
    model.compile(optimizer=StepRecorder("sgd"), loss="binary_crossentropy")
    # Keras keeps no graph of a subclassed model's `call`: its activations are named, not logged.
    train_events = fit_with_loggers(
        model, x, y, tmp_path, warns=r"cannot log layers hidden, out of two_layer: a subclassed "
                                     r"model calls them in its own `call`")
    assert_exact_tags(train_events, [f"two_layer/{layer}/{kind}" for layer in ("hidden", "out")
                                     for kind in ("kernel", "bias")], [])
    # Step 0 is logged even when fit starts with no weights at all.
    assert train_events.scalars[tags.GLOBAL_GRADIENT_NORM].steps.tolist() == [0, 1, 2, 3]
    assert_final_gradients_match(model, train_events, x, y)


def test_nested_sequential_inside_functional_model_is_tagged_by_path(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(48, 10, 2)).astype("float32")
    y = (x[:, :, 0].mean(axis=1) > 0).astype("float32")[:, None]
    encoder = keras.Sequential([
        keras.layers.Conv1D(4, 3, activation="relu", name="conv1d"),
        keras.layers.GlobalAveragePooling1D(name="pool"),
    ], name="encoder")
    inputs = keras.Input((10, 2), name="series")
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="out")(
        encoder(inputs)))
    model.compile(optimizer=StepRecorder("sgd"), loss="binary_crossentropy")
    train_events = fit_with_loggers(model, x, y, tmp_path)
    assert_exact_tags(train_events, ["encoder/conv1d/kernel", "encoder/conv1d/bias",
                                     "out/kernel", "out/bias"], ["encoder/conv1d"])
    assert_final_gradients_match(model, train_events, x, y)
    # A unit of a convolution is a channel: dead when f' = 0 at every position of every example.
    conv = encoder.get_layer("conv1d")
    z = keras.ops.convert_to_numpy(keras.ops.conv(x, conv.kernel) + conv.bias)
    expected_dead = np.mean(np.all(z <= 0, axis=(0, 1)))
    assert train_events.scalars["dead_fraction/encoder/conv1d"].values[-1] == pytest.approx(
        expected_dead, abs=1e-7)
    np.testing.assert_allclose(hidden_range(train_events, "preactivations", "encoder/conv1d"),
                               [z.min(), z.max()], rtol=1e-5)


def two_input_two_output_model():
    first, second = keras.Input((5,), name="first"), keras.Input((3,), name="second")
    hidden = keras.layers.Dense(8, activation="relu", name="shared")(
        keras.layers.Concatenate(name="join")([first, second]))
    label = keras.layers.Dense(1, activation="sigmoid", name="label")(hidden)
    value = keras.layers.Dense(1, name="value")(hidden)
    model = keras.Model({"first": first, "second": second}, [label, value])
    model.compile(optimizer=StepRecorder("sgd"),
                  loss={"label": "binary_crossentropy", "value": "mse"},
                  loss_weights={"label": 1.0, "value": 0.5})
    return model


def test_two_inputs_two_outputs_with_dict_targets(tmp_path):
    x_first, labels = toy_data(48, 5)
    x_second = np.random.default_rng(2).normal(size=(48, 3)).astype("float32")
    x = {"first": x_first, "second": x_second}
    y = {"label": labels, "value": x_second[:, :1] * 2.0}
    model = two_input_two_output_model()
    train_events = fit_with_loggers(model, x, y, tmp_path, shuffle=False)
    assert_exact_tags(train_events, [f"{layer}/{kind}" for layer in ("shared", "label", "value")
                                     for kind in ("kernel", "bias")], ["shared"])
    assert_final_gradients_match(model, train_events, x, y)
    # The probe's loss leaves fit's own per-output loss metrics as they are without loggers.
    logged_history = model.history.history
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    plain = two_input_two_output_model()
    plain_history = plain.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False).history
    assert set(logged_history) == set(plain_history) >= {"label_loss", "value_loss"}
    for name, values in plain_history.items():
        np.testing.assert_allclose(logged_history[name], values, rtol=1e-6, err_msg=name)


def test_probe_input_of_the_wrong_shape_is_named_at_fit(tmp_path):
    x_first, labels = toy_data(8, 5)
    model = two_input_two_output_model()
    probe = ({"first": x_first, "second": np.zeros((8, 4))}, {"label": labels, "value": labels})
    with pytest.raises(ValueError, match=r"`probe` x\['second'\] has example shape \(4,\) but "
                                         r"functional expects \(3,\)"):
        model.fit({"first": x_first, "second": x_first[:, :3]}, probe[1], verbose=0,
                  callbacks=[GradientLogger(tmp_path, probe=probe)])
    assert not (tmp_path / "train").exists()


def test_probe_from_dataset_with_sample_weights(tmp_path):
    x, y = toy_data(64)
    sample_weight = np.linspace(0.2, 2.0, len(x)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((x, y, sample_weight)).batch(16)
    inputs = keras.Input((5,))
    hidden = keras.layers.Dense(6, activation="relu", name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="out")(hidden))
    model.compile(optimizer=StepRecorder("sgd"), loss="binary_crossentropy")
    loggers = [GradientLogger(tmp_path, probe=dataset, probe_size=40),
               ActivationLogger(tmp_path, probe=dataset, probe_size=40)]
    # The first 40 examples, across three batches of 16.
    np.testing.assert_array_equal(loggers[0].probe.x, x[:40])
    np.testing.assert_array_equal(loggers[0].probe.sample_weight, sample_weight[:40])
    model.fit(dataset, epochs=1, verbose=0, shuffle=False, callbacks=loggers)
    train_events = events.read_events(tmp_path / "train")
    weighted = assert_final_gradients_match(model, train_events, x[:40], y[:40],
                                            sample_weight[:40])
    unweighted = np.sqrt(sum(np.sum(np.square(g)) for g in tape_gradients(model, x[:40], y[:40])))
    assert abs(weighted - unweighted) > 1e-3 * unweighted, "the weights must matter here"
    assert train_events.histograms["activations/hidden"].buckets[-1][:, 2].sum() == 40 * 6


def test_gradients_are_of_the_loss_fit_minimises_with_regularisers_batchnorm_dropout(tmp_path):
    x, y = toy_data(64)
    model = keras.Sequential([
        keras.Input((5,)),
        keras.layers.Dense(16, kernel_regularizer=keras.regularizers.L2(0.05),
                           activity_regularizer=keras.regularizers.L1(1e-3), name="dense"),
        keras.layers.BatchNormalization(name="norm"),
        keras.layers.Activation("relu", name="relu"),
        keras.layers.Dropout(0.5, name="dropout"),
        keras.layers.Dense(1, activation="sigmoid", kernel_regularizer=keras.regularizers.L2(0.05),
                           name="out"),
    ], name="regularised")
    model.compile(optimizer=StepRecorder(keras.optimizers.SGD(0.1)), loss="binary_crossentropy")
    train_events = fit_with_loggers(model, x, y, tmp_path, epochs=2)
    assert_exact_tags(train_events, [f"regularised/{key}" for key in (
        "dense/kernel", "dense/bias", "norm/gamma", "norm/beta", "out/kernel", "out/bias")],
        ["relu"])
    logged = assert_final_gradients_match(model, train_events, x, y)
    # Sensitivity: without the regularisation terms, or in training mode, the norm differs.
    with tf.GradientTape() as tape:
        compiled_only = keras.losses.BinaryCrossentropy()(y, model(x, training=False))
    without_penalties = np.sqrt(sum(np.sum(np.square(g)) for g in tape.gradient(
        compiled_only, model.trainable_variables)))
    assert abs(logged - without_penalties) > 1e-2 * logged
    with tf.GradientTape() as tape:
        training_mode = model.compute_loss(x=x, y=y, y_pred=model(x, training=True))
    in_training_mode = np.sqrt(sum(np.sum(np.square(g)) for g in tape.gradient(
        training_mode, model.trainable_variables)))
    assert abs(logged - in_training_mode) > 1e-2 * logged


def activation_zoo():
    """A hidden layer of every kind that applies an activation, on 6x6x2 images.

    A `TimeDistributed` Dense and a GRU are there too: not looked into.
    """
    layers = keras.layers
    inputs = keras.Input((6, 6, 2))
    hidden = layers.Conv2D(3, 3, padding="same", activation="elu", name="conv2d")(inputs)
    hidden = layers.ReLU(name="relu")(hidden)
    hidden = layers.DepthwiseConv2D(3, padding="same", activation="tanh", name="depthwise")(hidden)
    hidden = layers.SeparableConv2D(4, 3, padding="same", activation="selu",
                                    name="separable")(hidden)
    hidden = layers.Conv2DTranspose(3, 2, activation="swish", name="transpose")(hidden)
    hidden = layers.LeakyReLU(negative_slope=0.2, name="leaky")(hidden)
    hidden = layers.PReLU(name="prelu")(hidden)
    hidden = layers.ELU(name="elu")(hidden)
    hidden = layers.Reshape((7, 7, 3, 1), name="volume")(hidden)
    hidden = layers.Conv3D(2, 2, activation="relu", name="conv3d")(hidden)
    hidden = layers.Conv3DTranspose(1, 2, activation="softplus", name="transpose3d")(hidden)
    hidden = layers.Reshape((49, 3), name="sequence")(hidden)
    hidden = layers.Conv1D(2, 2, activation="sigmoid", name="conv1d")(hidden)
    hidden = layers.DepthwiseConv1D(2, activation="tanh", name="depthwise1d")(hidden)
    hidden = layers.SeparableConv1D(2, 2, activation="relu", name="separable1d")(hidden)
    hidden = layers.Conv1DTranspose(2, 2, activation="elu", name="transpose1d")(hidden)
    hidden = layers.MaxPooling1D(16, name="pool")(hidden)  # 2 steps left for the loops below
    hidden = layers.TimeDistributed(layers.Dense(2, activation="relu"), name="each_step")(hidden)
    hidden = layers.GRU(3, name="gru")(hidden)
    logits = layers.Dense(5, name="logits")(hidden)
    hidden = layers.Softmax(name="softmax")(logits)
    hidden = layers.EinsumDense("ab,bc->ac", output_shape=4, bias_axes="c", activation="gelu",
                                name="einsum")(hidden)
    outputs = layers.Dense(1, activation="sigmoid", name="out")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=StepRecorder("sgd"), loss="binary_crossentropy")
    return model


def test_every_kind_of_activation_layer_is_logged(tmp_path):
    x = np.random.default_rng(3).normal(size=(32, 6, 6, 2)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0).astype("float32")[:, None]
    model = activation_zoo()
    train_events = fit_with_loggers(model, x, y, tmp_path)
    activations = ["conv2d", "relu", "depthwise", "separable", "transpose", "leaky", "prelu",
                   "elu", "conv3d", "transpose3d", "conv1d", "depthwise1d", "separable1d",
                   "transpose1d", "softmax", "einsum"]
    assert_exact_tags(train_events, [variable.path for variable in model.trainable_variables],
                      activations)
    assert_final_gradients_match(model, train_events, x, y)
    # f'(z) of a leaky ReLU is its slope or 1; softmax's is s(1 - s), Jacobian's diagonal.
    np.testing.assert_allclose(
        hidden_range(train_events, "activation_derivative", "leaky"), [0.2, 1.0], rtol=1e-6)
    s = keras.ops.convert_to_numpy(keras.ops.softmax(
        keras.Model(model.input, model.get_layer("logits").output)(x)))
    np.testing.assert_allclose(hidden_range(train_events, "activation_derivative", "softmax"),
                               [np.min(s * (1 - s)), np.max(s * (1 - s))], rtol=1e-5)


def test_shared_layer_is_named_in_a_warning_and_the_others_logged(tmp_path):
    x, y = toy_data()
    inputs = keras.Input((5,))
    shared = keras.layers.Dense(5, activation="relu", name="shared")
    hidden = keras.layers.Dense(4, activation="tanh", name="hidden")(shared(shared(inputs)))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="out")(hidden))
    model.compile(optimizer=StepRecorder("sgd"), loss="binary_crossentropy")
    with pytest.warns(UserWarning, match=r"cannot log layers shared \(called more than once"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[ActivationLogger(tmp_path, probe=(x, y))])
    assert {tag.split("/", 1)[1] for tag in events.read_events(tmp_path / "train").histograms} \
        == {"hidden"}


def test_dead_units_of_channels_first_layers_are_channels():
    # TensorFlow runs channels-first convolutions on GPUs only: the counting is checked alone.
    derivative = np.ones((2, 3, 4, 4), "float32")  # (examples, channels, height, width)
    derivative[:, 1] = 0.0  # channel 1 is dead everywhere
    derivative[0, 2, 1, 1] = 0.0  # channel 2 is zero at one position only
    fractions = dead_fractions([tf.constant(derivative), tf.constant(derivative)], [1, -1])
    np.testing.assert_allclose(fractions.numpy(), [1 / 3, 0.0])


# The examples: a Sequential convnet, and a Bidirectional LSTM on variable-length sequences.

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def probe_of(x, y):
    """The probe the examples' loggers keep: 256 examples chosen with seed 0."""
    return make_probe(x, y, 256, 0)


def test_convnet_example_logs_conv_layers_by_channel(tmp_path, capsys):
    example = load_example("convnet_digits")
    model = example.main(["--logdir", str(tmp_path), "--epochs", "1", "--samples", "300"])
    assert f"tensorboard --logdir {tmp_path}" in capsys.readouterr().out
    run = runs.read_run_events(tmp_path)
    assert {"epoch_loss", "epoch_accuracy"} <= set(run.train.scalars) & set(run.validation.scalars)
    assert_exact_tags(
        _without_keras_tensorboard(run.train),
        [f"convnet/{layer}/{kind}" for layer in ("conv2d", "conv2d_1", "dense")
         for kind in ("kernel", "bias")],
        ["conv2d", "conv2d_1"])  # the softmax output layer is not a hidden activation
    x, y = probe_of(*example.load_data(300))
    assert_final_gradients_match(model, run.train, x, y)
    # One unit per channel: 32 and 64 of them.
    derivative = run.train.histograms["activation_derivative/conv2d_1"].buckets[-1]
    assert derivative[:, 2].sum() == 256 * 4 * 4 * 64


def test_convnet_example_with_mixed_precision_and_steps_per_execution(tmp_path):
    example = load_example("convnet_digits")
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = example.train(str(tmp_path), epochs=2, samples=300, steps_per_execution=2)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    train_events = events.read_events(tmp_path / "train")
    assert model.optimizer.iterations.numpy() == 6  # 3 batches of 128 (270 examples) per epoch
    # Executions of 2 steps end at steps 2, 3 (the epoch's last batch), 5 and 6.
    assert train_events.scalars[tags.GLOBAL_GRADIENT_NORM].steps.tolist() == [0, 2, 3, 5, 6]
    assert train_events.histograms["preactivations/conv2d"].steps.tolist() == [0, 2, 3, 5, 6]
    assert train_events.scalars[tags.BATCH_LOSS].steps.tolist() == [1, 2, 3, 4, 5, 6]
    # The float16 softmax output is still recognised as the output, not a hidden layer.
    assert {tag for tag in train_events.histograms if tag.startswith("activations/")} == {
        "activations/conv2d", "activations/conv2d_1"}
    for series in [*train_events.scalars.values(), *train_events.histograms.values()]:
        assert np.all(np.isfinite(series.values if hasattr(series, "values") else series.buckets))
    assert {variable.dtype for variable in model.trainable_variables} == {"float32"}


def test_text_example_bidirectional_lstm_with_variable_length_input(tmp_path):
    example = load_example("text_classifier")
    model = example.main(["--logdir", str(tmp_path), "--epochs", "1", "--samples", "160"])
    assert model.input_shape == (None, None)
    train_events = _without_keras_tensorboard(runs.read_run_events(tmp_path).train)
    lstm = [f"bidirectional/{direction}_lstm/lstm_cell/{kind}" for direction in
            ("forward", "backward") for kind in ("kernel", "recurrent_kernel", "bias")]
    assert_exact_tags(train_events, [f"text_classifier/{key}" for key in (
        "embedding/embeddings", *lstm, "dense/kernel", "dense/bias", "dense_1/kernel",
        "dense_1/bias")], ["dense"])  # the LSTM gates: weights and gradients only
    x, y = probe_of(*example.make_reviews(160))
    assert_final_gradients_match(model, train_events, x, y)


def _without_keras_tensorboard(train_events):
    """The events without the epoch summaries of Keras's own TensorBoard callback."""
    for tag in [tag for tag in train_events.scalars if tag.startswith("epoch_")]:
        del train_events.scalars[tag]
    return train_events
