import keras
import numpy as np
import pytest

from reproduce import models
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
