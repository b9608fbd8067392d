"""Gradients of any training loop: custom `train_step`, two optimizers, a loss of the user's own.

Real `fit`s on tiny data, read back from the event files. Applied gradients
are checked against `RecordingAdam`, which records the norms of what it is
given to apply; probe gradients with a `loss_fn` against an independent
`tf.GradientTape` of the same loss.
"""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from callbacks import (ActivationLogger, AppliedGradientLogger, BatchLossLogger, EpochLogger,
                       GradientLogger, ModeStrengthLogger, StepRecorder, WeightLogger, tags)
from conftest import PROCESS_TIMEOUT_S
from recording_optimizer import RecordingAdam
from reproduce import runs
from reproduce.runs import events
from test_callbacks_models import load_example

HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def fresh_session():
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)


def toy_data(count=48, features=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(count, features)).astype("float32")
    return x, (x[:, :1] - 0.5 * x[:, 1:2]).astype("float32")


class OwnLossModel(keras.Model):
    """keras-io's "Customizing what happens in fit()": a train_step with a loss of its own."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = tf.cast(self(x, training=True), tf.float32)
            loss = tf.reduce_mean(tf.square(y_pred - y)) + 0.1 * tf.reduce_mean(tf.abs(y_pred))
            scaled = self.optimizer.scale_loss(loss)  # as Keras's own step, for mixed precision
        gradients = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}


def own_loss_model(optimizer, **compile_options):
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(8, activation="tanh", name="hidden")(inputs)
    model = OwnLossModel(inputs, keras.layers.Dense(1, name="out")(hidden), name="own_loss")
    model.compile(optimizer=optimizer, **compile_options)  # no loss
    return model


def variable_keys(model):
    return [variable.path for variable in model.trainable_variables]


def assert_applied_tags(train_events, keys, scope=""):
    """Exactly a histogram and a norm per key, and the global norm, under `scope`."""
    keys = [tags.scoped(scope, key) for key in keys]
    assert {tag for tag in train_events.histograms} >= {f"gradients/{key}" for key in keys}
    expected_scalars = {f"gradient_norm/{key}" for key in keys}
    expected_scalars.add(f"gradient_norm/{tags.scoped(scope, 'global')}")
    return expected_scalars


def assert_logged_norms_match(train_events, optimizer, keys, scope="", rtol=1e-6):
    """The logged norms at every logged step equal those `optimizer` recorded at that step."""
    global_tag = f"gradient_norm/{tags.scoped(scope, 'global')}"
    steps = train_events.scalars[global_tag].steps
    while not isinstance(optimizer, RecordingAdam):  # inside StepRecorder, LossScaleOptimizer
        optimizer = optimizer.inner_optimizer
    recorded = optimizer.norms_at(steps)
    np.testing.assert_allclose(train_events.scalars[global_tag].values, recorded[:, -1],
                               rtol=rtol)
    for index, key in enumerate(keys):
        tag = f"gradient_norm/{tags.scoped(scope, key)}"
        assert train_events.scalars[tag].steps.tolist() == steps.tolist()
        np.testing.assert_allclose(train_events.scalars[tag].values, recorded[:, index],
                                   rtol=rtol, err_msg=tag)
    return steps.tolist()


def test_custom_train_step_logs_the_gradients_its_optimizer_applied(tmp_path):
    x, y = toy_data()
    model = own_loss_model(StepRecorder(RecordingAdam(4, learning_rate=0.05)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model.fit(x, y, batch_size=8, epochs=2, verbose=0,
                  callbacks=[AppliedGradientLogger(tmp_path, every_n_steps=5)])
    train_events = events.read_events(tmp_path / "train")
    keys = variable_keys(model)
    assert keys == ["hidden/kernel", "hidden/bias", "out/kernel", "out/bias"]
    assert set(train_events.histograms) == {f"gradients/{key}" for key in keys}
    assert set(train_events.scalars) == {f"gradient_norm/{key}" for key in keys} | {
        tags.GLOBAL_GRADIENT_NORM}
    # 12 steps: logged at 0, 5, 10, the gradients on the weights after that many updates.
    assert assert_logged_norms_match(train_events, model.optimizer, keys) == [0, 5, 10]
    for key, variable in zip(keys, model.trainable_variables):
        histograms = train_events.histograms[f"gradients/{key}"]
        assert histograms.steps.tolist() == [0, 5, 10]
        assert [buckets[:, 2].sum() for buckets in histograms.buckets] == [
            np.prod(variable.shape)] * 3
    # Nothing is left on the optimizer: a later fit without the logger runs the plain step.
    assert model.optimizer.listeners == ()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    logged = events.read_events(tmp_path / "train").scalars[tags.GLOBAL_GRADIENT_NORM]
    assert logged.steps.tolist() == [0, 5, 10]


def test_several_logs_in_one_execution_of_keras_own_train_step(tmp_path):
    x, y = toy_data()
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(1)], name="seq")
    model.compile(StepRecorder(RecordingAdam(4)), "mse", steps_per_execution=4)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0,
              callbacks=[AppliedGradientLogger(tmp_path, every_n_steps=2)])
    train_events = events.read_events(tmp_path / "train")
    assert assert_logged_norms_match(train_events, model.optimizer, variable_keys(model)) == [
        0, 2, 4, 6, 8, 10]


@pytest.mark.parametrize("scaling", ["inside", "outside"])
def test_mixed_precision_logs_unscaled_gradients(tmp_path, scaling):
    x, y = toy_data()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        inner = RecordingAdam(4)
        if scaling == "inside":  # StepRecorder(LossScaleOptimizer(...)), as the README says
            model = own_loss_model(StepRecorder(keras.optimizers.LossScaleOptimizer(inner)),
                                   auto_scale_loss=False)
            loss_scaling = model.optimizer.inner_optimizer
        else:  # compile puts its LossScaleOptimizer around the recorder
            model = own_loss_model(StepRecorder(inner))
            loss_scaling = model.optimizer
        assert isinstance(loss_scaling, keras.optimizers.LossScaleOptimizer)
        model.fit(x, y, batch_size=8, epochs=1, verbose=0,
                  callbacks=[AppliedGradientLogger(tmp_path, every_n_steps=2)])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert float(loss_scaling.dynamic_scale.numpy()) >= 2.0 ** 10  # the scale is large
    train_events = events.read_events(tmp_path / "train")
    assert assert_logged_norms_match(train_events, inner, variable_keys(model), rtol=1e-5) == [
        0, 2, 4]


def test_loss_scale_factor_is_divided_out(tmp_path):
    x, y = toy_data()
    optimizer = RecordingAdam(4, loss_scale_factor=64.0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(1)], name="seq")
    model.compile(StepRecorder(optimizer), "mse")  # Keras's step multiplies the loss by it
    model.fit(x, y, batch_size=8, epochs=1, verbose=0,
              callbacks=[AppliedGradientLogger(tmp_path, every_n_steps=3)])
    train_events = events.read_events(tmp_path / "train")
    steps = train_events.scalars[tags.GLOBAL_GRADIENT_NORM].steps
    np.testing.assert_allclose(train_events.scalars[tags.GLOBAL_GRADIENT_NORM].values * 64.0,
                               optimizer.norms_at(steps)[:, -1], rtol=1e-6)


def test_large_variable_is_kept_as_its_sample_range_and_norm(tmp_path):
    x = np.random.default_rng(4).normal(size=(32, 300)).astype("float32")
    model = keras.Sequential([keras.Input((300,)), keras.layers.Dense(256, activation="relu"),
                              keras.layers.Dense(1)], name="wide")
    model.compile(StepRecorder(RecordingAdam(4)), "mse")
    model.fit(x, x[:, :1], batch_size=16, epochs=1, verbose=0,
              callbacks=[AppliedGradientLogger(tmp_path, every_n_steps=1)])
    train_events = events.read_events(tmp_path / "train")
    assert assert_logged_norms_match(train_events, model.optimizer, variable_keys(model),
                                     rtol=1e-5) == [0, 1]
    kernel = train_events.histograms["gradients/wide/dense/kernel"].buckets[-1]
    np.testing.assert_allclose(kernel[:, 2].sum(), 300 * 256, rtol=1e-12)  # 76,800 > 65,536


class CriticLoopModel(OwnLossModel):
    """A train step applying its optimizer five times (a WGAN critic's inner loop)."""

    def train_step(self, data):
        x, y = data
        for _ in range(5):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(self(x, training=True) - y))
            self.optimizer.apply(tape.gradient(loss, self.trainable_variables),
                                 self.trainable_variables)
        return {"loss": loss}


def test_logs_without_a_free_slot_are_counted_and_named(tmp_path):
    x, y = toy_data()
    inputs = keras.Input((3,))
    model = CriticLoopModel(inputs, keras.layers.Dense(1)(inputs))
    model.compile(StepRecorder(RecordingAdam(2, steps=512)), steps_per_execution=6)
    with pytest.warns(UserWarning, match=r"AppliedGradientLogger: \d+ due logs of optimizer "
                                         r"\w+ found no free slot"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0,
                  callbacks=[AppliedGradientLogger(tmp_path, every_n_steps=1)])
    # 30 calls in one execution, 20 slots: the first 20 kept, each with its own step's values.
    train_events = events.read_events(tmp_path / "train")
    assert assert_logged_norms_match(train_events, model.optimizer, ["dense/kernel",
                                                                      "dense/bias"]) == list(
        range(20))


def test_gradient_accumulation_is_refused_before_training(tmp_path):
    x, y = toy_data()
    model = own_loss_model(StepRecorder(keras.optimizers.Adam(gradient_accumulation_steps=2)))
    with pytest.raises(ValueError, match="gradient_accumulation_steps=2"):
        model.fit(x, y, verbose=0, callbacks=[AppliedGradientLogger(tmp_path)])
    assert int(model.optimizer.iterations.numpy()) == 0


# A GAN: keras-io's DCGAN train_step, two optimizers (examples/gan_points.py).

def recording_gan(example):
    gan = example.GAN(width=8)
    gan.compile(d_optimizer=StepRecorder(RecordingAdam(6, beta_1=0.5)),
                g_optimizer=StepRecorder(RecordingAdam(6, beta_1=0.5)),
                loss_fn=keras.losses.BinaryCrossentropy(from_logits=True))
    return gan


GAN_KEYS = {"generator": ["generator/dense/kernel", "generator/dense/bias",
                          "generator/dense_1/kernel", "generator/dense_1/bias",
                          "generator/dense_2/kernel", "generator/dense_2/bias"],
            "discriminator": ["discriminator/dense_3/kernel", "discriminator/dense_3/bias",
                              "discriminator/dense_4/kernel", "discriminator/dense_4/bias",
                              "discriminator/dense_5/kernel", "discriminator/dense_5/bias"]}


def test_gan_logs_each_optimizer_under_its_network(tmp_path):
    example = load_example("gan_points")
    gan = recording_gan(example)
    points = example.make_points(96)
    latent = np.random.default_rng(1).normal(size=(32, example.LATENT_DIM)).astype("float32")
    gan.fit(points, batch_size=16, epochs=2, verbose=0, callbacks=[
        AppliedGradientLogger(tmp_path / "applied", every_n_steps=4),
        GradientLogger(tmp_path / "probe", probe=(points[:32], latent), every_n_steps=4,
                       loss_fn=example.discriminator_loss)])
    applied = events.read_events(tmp_path / "applied" / "train")
    assert set(applied.histograms) == {f"gradients/{key}" for keys in GAN_KEYS.values()
                                       for key in keys}
    assert set(applied.scalars) == {f"gradient_norm/{key}" for keys in GAN_KEYS.values()
                                    for key in keys} | {"gradient_norm/generator/global",
                                                        "gradient_norm/discriminator/global"}
    # 12 train steps, each stepping both optimizers once: logged at 0, 4, 8 of each.
    for network, optimizer in (("generator", gan.g_optimizer),
                               ("discriminator", gan.d_optimizer)):
        assert assert_logged_norms_match(applied, optimizer, GAN_KEYS[network],
                                         scope=network) == [0, 4, 8]
    # The probe loggers count train steps: compile() left the model's own optimizer unused.
    assert int(gan.optimizer.iterations.numpy()) == 0
    probe = events.read_events(tmp_path / "probe" / "train")
    assert probe.scalars[tags.GLOBAL_GRADIENT_NORM].steps.tolist() == [0, 4, 8, 12]
    with tf.GradientTape() as tape:
        loss = example.discriminator_loss(gan, tf.constant(points[:32]), tf.constant(latent))
    gradients = tape.gradient(loss, gan.trainable_variables)
    np.testing.assert_allclose(probe.scalars[tags.GLOBAL_GRADIENT_NORM].values[-1],
                               tf.linalg.global_norm(gradients).numpy(), rtol=1e-5)


def test_optimizers_named_by_the_user(tmp_path):
    example = load_example("gan_points")
    gan = recording_gan(example)
    gan.fit(example.make_points(32), batch_size=16, epochs=1, verbose=0, callbacks=[
        AppliedGradientLogger(tmp_path, every_n_steps=1,
                              optimizers={"gen": gan.g_optimizer, "disc": gan.d_optimizer})])
    train_events = events.read_events(tmp_path / "train")
    assert {tag for tag in train_events.scalars if tag.endswith("/global")} == {
        "gradient_norm/gen/global", "gradient_norm/disc/global"}
    assert "gradients/gen/generator/dense/kernel" in train_events.histograms
    assert_logged_norms_match(train_events, gan.d_optimizer, GAN_KEYS["discriminator"],
                              scope="disc")


def test_gan_example_runs_and_logs_both_networks(tmp_path, capsys):
    example = load_example("gan_points")
    example.main(["--logdir", str(tmp_path), "--epochs", "2", "--samples", "256"])
    assert f"tensorboard --logdir {tmp_path}" in capsys.readouterr().out
    run = runs.read_run_events(tmp_path)
    # 2 epochs of 4 batches: about twenty logs asked for, one every step.
    for network in GAN_KEYS:
        assert run.train.scalars[f"gradient_norm/{network}/global"].steps.tolist() == list(
            range(8))
    hidden = ["generator/dense", "generator/dense_1", "discriminator/dense_3",
              "discriminator/dense_4"]
    assert {tag for tag in run.train.histograms if tag.startswith("backprop_gradients/")} == {
        f"backprop_gradients/{layer}" for layer in hidden}
    assert run.train.histograms["activations/generator/dense"].steps.tolist() == list(range(9))
    assert {"epoch_d_loss", "epoch_g_loss"} <= set(run.train.scalars)


# A VAE: the KL term added with add_loss during the train step's forward pass.

class Sampling(keras.layers.Layer):
    """z = mean + exp(log_var / 2) * noise; adds the KL divergence to N(0, 1) as a loss."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(7)

    def call(self, inputs):
        mean, log_var = inputs
        self.add_loss(kl_divergence(mean, log_var))
        noise = keras.random.normal(tf.shape(mean), seed=self.seed_generator)
        return mean + tf.exp(0.5 * log_var) * noise


def kl_divergence(mean, log_var):
    return tf.reduce_mean(tf.reduce_sum(
        -0.5 * (1 + log_var - tf.square(mean) - tf.exp(log_var)), axis=1))


class VAE(keras.Model):
    def __init__(self, features=4, latent=2):
        super().__init__(name="vae")
        inputs = keras.Input((features,))
        hidden = keras.layers.Dense(8, activation="relu", name="encoder_hidden")(inputs)
        mean = keras.layers.Dense(latent, name="mean")(hidden)
        log_var = keras.layers.Dense(latent, name="log_var")(hidden)
        self.encoder = keras.Model(inputs, [mean, log_var], name="encoder")
        self.sampling = Sampling(name="sampling")
        codes = keras.Input((latent,))
        hidden = keras.layers.Dense(8, activation="tanh", name="decoder_hidden")(codes)
        self.decoder = keras.Model(codes, keras.layers.Dense(features, name="reconstruction")(
            hidden), name="decoder")
        self.total_loss = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.total_loss]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            mean, log_var = self.encoder(data)
            reconstruction = self.decoder(self.sampling([mean, log_var]))
            loss = tf.reduce_mean(tf.reduce_sum(tf.square(data - reconstruction), axis=1))
            loss += tf.add_n(self.sampling.losses)
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        self.total_loss.update_state(loss)
        return {"loss": self.total_loss.result()}


def vae_loss(model, x, y):
    """The VAE's loss on the probe, without the sampling noise: decoded from the mean."""
    mean, log_var = model.encoder(x)
    reconstruction = model.decoder(mean)
    return (tf.reduce_mean(tf.reduce_sum(tf.square(y - reconstruction), axis=1))
            + kl_divergence(mean, log_var))


def test_vae_probe_gradients_of_the_users_loss(tmp_path):
    x = np.random.default_rng(3).normal(size=(64, 4)).astype("float32")
    model = VAE()
    model.compile(optimizer="adam")
    probe = (x[:32], x[:32])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model.fit(x, batch_size=16, epochs=2, verbose=0, callbacks=[
            GradientLogger(tmp_path, probe, every_n_steps=2, loss_fn=vae_loss),
            ActivationLogger(tmp_path, probe, every_n_steps=2, loss_fn=vae_loss)])
    train_events = events.read_events(tmp_path / "train")
    assert train_events.scalars[tags.GLOBAL_GRADIENT_NORM].steps.tolist() == [0, 2, 4, 6, 8]
    with tf.GradientTape() as tape:
        loss = vae_loss(model, tf.constant(x[:32]), tf.constant(x[:32]))
    gradients = tape.gradient(loss, model.trainable_variables)
    assert len(gradients) == 10 and all(gradient is not None for gradient in gradients)
    for variable, gradient in zip(model.trainable_variables, gradients):
        np.testing.assert_allclose(
            train_events.scalars[f"gradient_norm/{variable.path}"].values[-1],
            np.linalg.norm(gradient.numpy()), rtol=1e-5, err_msg=variable.path)
    np.testing.assert_allclose(train_events.scalars[tags.GLOBAL_GRADIENT_NORM].values[-1],
                               tf.linalg.global_norm(gradients).numpy(), rtol=1e-5)
    # Both hidden layers, through the encoder and decoder the loss function calls.
    assert {tag for tag in train_events.histograms if tag.startswith("activations/")} == {
        "activations/encoder/encoder_hidden", "activations/decoder/decoder_hidden"}
    hidden = model.encoder.get_layer("encoder_hidden")
    z = x[:32] @ hidden.kernel.numpy() + hidden.bias.numpy()
    buckets = train_events.histograms["preactivations/encoder/encoder_hidden"].buckets[-1]
    np.testing.assert_allclose([buckets[0, 0], buckets[-1, 1]], [z.min(), z.max()], rtol=1e-5)


@pytest.mark.parametrize("logger", [GradientLogger, ActivationLogger])
def test_no_loss_is_named_at_train_begin_with_both_options(tmp_path, logger):
    x, y = toy_data()
    model = own_loss_model("adam")
    with pytest.raises(ValueError, match=(
            rf"{logger.__name__}: own_loss has no compiled loss and a train_step of its own.*"
            r"Pass loss_fn=lambda model, x, y: .* or compile the model with a loss")):
        model.fit(x, y, verbose=0, callbacks=[logger(tmp_path, probe=(x, y))])
    assert int(model.optimizer.iterations.numpy()) == 0  # before the first batch
    assert not (tmp_path / "train").exists()
    # Weights need no loss.
    model.fit(x, y, batch_size=16, verbose=0, callbacks=[WeightLogger(tmp_path, probe=(x, y))])
    assert set(events.read_events(tmp_path / "train").histograms) == {
        f"weights/{key}" for key in variable_keys(model)}


def test_loss_fn_must_return_a_scalar_and_be_taken_only_where_used(tmp_path):
    x, y = toy_data()
    model = own_loss_model("adam")
    with pytest.raises(ValueError, match=r"`loss_fn` must return a scalar loss, returned a "
                                         r"tensor of shape \(1, 1\)"):
        model.fit(x, y, verbose=0, callbacks=[GradientLogger(
            tmp_path, (x, y), loss_fn=lambda model, x, y: tf.reduce_sum(model(x), 0, True)[:1])])
    with pytest.raises(ValueError, match="WeightLogger does not use the loss"):
        WeightLogger(tmp_path, (x, y), loss_fn=vae_loss)
    with pytest.raises(ValueError, match="must accept a `sample_weight` keyword"):
        GradientLogger(tmp_path, (x, y, np.ones(len(x))), loss_fn=vae_loss)
    assert not (tmp_path / "train").exists()


# Other Keras backends, and several replicas: each in a process of its own.

ALL_LOGGERS = [AppliedGradientLogger, BatchLossLogger, EpochLogger, GradientLogger,
               WeightLogger, ActivationLogger, ModeStrengthLogger]
BACKEND_SCRIPT = """
import json, sys
import numpy as np
from callbacks import {names}
arguments = {{"ModeStrengthLogger": (np.eye(2), np.eye(2))}}
probe = (np.ones((4, 2)), np.ones((4, 1)))
errors = {{}}
for logger in [{names}]:
    name = logger.__name__
    try:
        extra = arguments.get(name, ())
        if name in ("GradientLogger", "WeightLogger", "ActivationLogger"):
            extra = (probe,)
        logger(sys.argv[1], *extra)
    except RuntimeError as error:
        errors[name] = str(error)
print(json.dumps(errors))
"""


def test_other_keras_backend_is_named_when_a_logger_is_created(tmp_path):
    pytest.importorskip("jax")  # installed with the test extra
    names = ", ".join(logger.__name__ for logger in ALL_LOGGERS)
    result = subprocess.run(
        [sys.executable, "-c", BACKEND_SCRIPT.format(names=names), str(tmp_path / "run")],
        capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S,
        env={**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(HERE.parent)})
    assert result.returncode == 0, result.stderr[-3000:]
    errors = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(errors) == {logger.__name__ for logger in ALL_LOGGERS}
    for name, message in errors.items():
        assert message == (f"{name} needs Keras's TensorFlow backend, but Keras runs on 'jax' "
                           "(KERAS_BACKEND=jax); set KERAS_BACKEND=tensorflow before Keras is "
                           "imported")
    assert not (tmp_path / "run").exists()


def test_mirrored_strategy_sums_replicas_and_xla_compiles():
    result = subprocess.run(
        [sys.executable, str(HERE / "applied_gradients_apart.py")],
        capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)])})
    assert result.returncode == 0, result.stderr[-3000:]
    cases = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(cases) == {"mirrored_float32", "mirrored_mixed_float16", "xla"}
    for name, case in cases.items():
        assert (case["replicas"], case["jit_compile"]) == ((1, True) if name == "xla" else
                                                           (2, False))
        assert case["steps"] == [0, 2, 4]
        # Recorded of the gradients all-reduced over the replicas.
        np.testing.assert_allclose(case["logged"], case["recorded"], rtol=1e-5, err_msg=name)
