import keras
import numpy as np
import pytest
import tensorflow as tf

from reproduce.training import models
from reproduce.config import ACTIVATIONS, TEST_CONFIG


def test_layer_names_and_parameter_count():
    model = models.build_model(TEST_CONFIG.replace(depth=3, width=5), input_dim=2, n_classes=2)
    names = [layer.name for layer in model.layers[1:]]
    assert names == ["dense_1", "act_1", "dense_2", "act_2", "dense_3", "act_3", "output"]
    assert model.count_params() == (2 * 5 + 5) + 2 * (5 * 5 + 5) + (5 + 1)
    assert all(model.get_layer(f"dense_{i}").activation is keras.activations.linear
               for i in (1, 2, 3))


def test_multiclass_output_is_softmax_over_classes():
    model = models.build_model(TEST_CONFIG, input_dim=64, n_classes=10)
    output = model.get_layer("output")
    assert output.units == 10 and output.activation is keras.activations.softmax


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_every_listed_activation_builds(name):
    model = models.build_model(TEST_CONFIG.replace(activation=name), 2, 2)
    assert model.get_layer("act_1").activation is keras.activations.get(name)


def test_standard_initializer_is_uniform_one_over_sqrt_fan_in():
    model = models.build_model(TEST_CONFIG.replace(initializer="standard", width=400), 2, 2)
    kernel = model.get_layer("dense_2").kernel.numpy()
    limit = 1 / np.sqrt(400)
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.95 * limit


@pytest.mark.parametrize("name", ["glorot_uniform", "he_normal", "orthogonal"])
def test_initializers_are_seeded(name):
    config = TEST_CONFIG.replace(initializer=name)
    first = models.build_model(config, 2, 2).get_layer("dense_1").kernel.numpy()
    again = models.build_model(config, 2, 2).get_layer("dense_1").kernel.numpy()
    np.testing.assert_array_equal(first, again)


def _two_output_model():
    def dense(units, seed, **options):
        return keras.layers.Dense(units, kernel_initializer=keras.initializers.GlorotUniform(seed),
                                  **options)

    inputs = keras.Input([3])
    hidden = dense(4, 1, activation="tanh")(inputs)
    model = keras.Model(inputs, {"label": dense(3, 2, activation="softmax", name="label")(hidden),
                                 "value": dense(1, 3, name="value")(hidden)})
    model.compile(optimizer="adam",
                  loss={"label": "sparse_categorical_crossentropy", "value": "mse"},
                  metrics={"label": ["accuracy"], "value": ["mae"]}, steps_per_execution=4)
    return model


def _mlp():
    model = models.build_model(TEST_CONFIG.replace(steps_per_execution=4), 3, 3)
    models.compile_model(model, TEST_CONFIG.replace(steps_per_execution=4), 3)
    return model


@pytest.mark.parametrize("make_model", [_mlp, _two_output_model])
def test_build_state_traces_the_train_step_once_and_changes_no_result(make_model):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 3)).astype("float32")  # 23 batches of 4: a partial last execution
    labels = rng.integers(0, 3, size=90)
    targets = labels if make_model is _mlp else {"label": labels, "value": x.sum(axis=1)}
    data = tf.data.Dataset.from_tensor_slices((x, targets, np.linspace(0.5, 1.5, 90))).batch(4)
    outcomes = []
    for build_first in (False, True):
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        model = make_model()
        traces = []
        train_step = model.train_step
        model.train_step = lambda batch: (traces.append(1), train_step(batch))[1]
        if build_first:
            models.build_state(model, data.element_spec)
            assert all(metric.numpy() == 0 for metric in model.metrics_variables)
        history = model.fit(data, epochs=2, verbose=0, shuffle=False)
        outcomes.append((len(traces), history.history, [w.numpy() for w in model.weights]))
    (plain_traces, plain_history, plain_weights), (traces, history, weights) = outcomes
    assert plain_traces == 2 and traces == 1  # Keras alone traces its step again
    assert history == plain_history
    for built, plain in zip(weights, plain_weights, strict=True):
        np.testing.assert_array_equal(built, plain)
