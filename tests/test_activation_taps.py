"""How the probe loggers see a model: its graph, through public Keras APIs only.

z and f(z) come from a tap model over the model's own layers; z of a layer
applying its own activation from a twin of ours reading the layer's weights.
Checked here: that z is the layer's own bit for bit, that dLoss/df(z) is the
gradient through the model's forward pass, that the loggers set no
attribute on the user's Keras objects and that what they keep for a model
does not keep it alive.
"""

import gc
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf

from callbacks import ActivationLogger, GradientLogger, WeightLogger
from callbacks.activation_layers import Tapping
from callbacks.probe_group import probe_scope, traced_functions
from reproduce.runs import events


@pytest.fixture(autouse=True)
def fresh_session():
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)


def toy_images(count=16):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(count, 6, 6, 2)).astype("float32")
    return x, (x.mean(axis=(1, 2, 3)) > 0).astype("float32")[:, None]


def recording(name, function, recorded):
    """An activation that keeps its argument: the layer's own z, as the layer computes it."""
    def activation(z):
        recorded[name] = z
        return function(z)
    return activation


@pytest.mark.parametrize("policy", ["float32", "mixed_float16"])
def test_z_of_the_twin_is_the_layers_own_bit_for_bit(policy):
    recorded = {}
    keras.mixed_precision.set_global_policy(policy)
    try:
        inputs = keras.Input((6, 6, 2))
        hidden = keras.layers.Conv2D(3, 3, name="conv", activation=recording(
            "conv", keras.activations.tanh, recorded))(inputs)
        hidden = keras.layers.Dense(4, name="dense", activation=recording(
            "dense", keras.activations.sigmoid, recorded))(keras.layers.Flatten()(hidden))
        model = keras.Model(inputs, keras.layers.Dense(1, name="out")(hidden))
        tapping = Tapping(model)

        @tf.function(autograph=False)
        def preactivations(x):
            tapping.begin()
            with probe_scope(model, tapping):
                tapping.forward(x, training=False)
            pairs = {tap.path: (tap.calls[0][0], recorded[tap.path]) for tap in tapping.taps}
            tapping.end()
            return pairs

        pairs = preactivations(tf.constant(toy_images()[0]))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert set(pairs) == {"conv", "dense"}
    for path, (z, own) in pairs.items():
        assert z.dtype == own.dtype == ("float16" if policy == "mixed_float16" else "float32")
        np.testing.assert_array_equal(z.numpy(), own.numpy(), err_msg=path)


def test_backprop_gradients_are_those_of_the_models_forward_pass(tmp_path):
    x, y = toy_images(32)
    encoder = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Conv2D(
        3, 3, activation="relu", name="conv"), keras.layers.Flatten(name="flat")], name="encoder")
    inputs = keras.Input((6, 6, 2))
    hidden = keras.layers.Dense(4, activation="tanh", name="hidden")(encoder(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="out")(hidden))
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0,
              callbacks=[ActivationLogger(tmp_path, probe=(x, y))])
    train_events = events.read_events(tmp_path / "train")
    # dLoss/df(z) of `hidden`, independently: the tail of the model from its output.
    layer = model.get_layer("hidden")
    h = keras.Model(model.input, layer.output)(x)
    tail = keras.Model(layer.output, model.output)
    with tf.GradientTape() as tape:
        tape.watch(h)
        loss = model.compute_loss(x=x, y=y, y_pred=tail(h), training=False)
    gradient = tape.gradient(loss, h).numpy()
    buckets = train_events.histograms["backprop_gradients/hidden"].buckets[-1]
    np.testing.assert_allclose([buckets[0, 0], buckets[-1, 1]], [gradient.min(), gradient.max()],
                               rtol=1e-5)
    assert {tag.split("/", 1)[1] for tag in train_events.histograms} == {"encoder/conv", "hidden"}


def attribute_names(model) -> set:
    """(position, class, attribute) of the model, its metrics and layers, nested ones too."""
    return {(index, type(each).__name__, key)
            for index, each in enumerate(keras_objects(model)) for key in vars(each)}


def keras_objects(model) -> list:
    objects = [model, *model.metrics]
    for layer in model.layers:
        objects += keras_objects(layer) if isinstance(layer, keras.Model) else [layer]
    return objects


def test_loggers_set_no_attribute_on_the_users_keras_objects(tmp_path):
    x, y = toy_images()

    def fit(callbacks):
        keras.utils.set_random_seed(0)
        encoder = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Conv2D(
            2, 3, activation="relu", name="conv"), keras.layers.Flatten()], name="encoder")
        inputs = keras.Input((6, 6, 2))
        model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="out")(
            keras.layers.Dropout(0.2)(encoder(inputs))))
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
        history = model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=callbacks)
        return model, history.history

    plain, plain_history = fit([])
    logged, logged_history = fit([logger(tmp_path, probe=(x, y), every_n_steps=1)
                                  for logger in (GradientLogger, WeightLogger, ActivationLogger)])
    assert attribute_names(logged) == attribute_names(plain)
    # Nor do they change what fit computes: the probe's passes update no metric.
    assert logged_history.keys() == plain_history.keys()
    for name, values in plain_history.items():
        np.testing.assert_allclose(logged_history[name], values, rtol=1e-6, err_msg=name)


def test_what_is_kept_for_a_model_does_not_keep_it_alive(tmp_path):
    x, y = toy_images()
    inputs = keras.Input((6, 6, 2))
    hidden = keras.layers.Conv2D(2, 3, activation="relu", name="conv")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(
        keras.layers.Flatten()(hidden)))
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[
        logger(tmp_path, probe=(x, y)) for logger in (GradientLogger, ActivationLogger)])
    assert len(traced_functions(model)) == 1
    reference = weakref.ref(model)
    del model
    gc.collect()
    assert reference() is None
