"""`build_model`: the MLP whose hidden activation the article is about.

Each hidden `Dense` layer has no activation of its own and is followed by its
own `Activation` layer, so pre-activations (`dense_i`) and activations
(`act_i`) are separately addressable by name.
"""

from __future__ import annotations

import math

import keras

from reproduce.config import RunConfig
from reproduce.network import OUTPUT_NAME, activation_name, dense_name, loss_name  # noqa: F401


def make_initializer(name: str, fan_in: int, seed: int):
    """Returns a seeded Keras initializer.

    `standard` is U[-1/sqrt(n), 1/sqrt(n)] (Glorot & Bengio 2010).
    """
    if name == "standard":
        limit = 1.0 / math.sqrt(fan_in)
        return keras.initializers.RandomUniform(-limit, limit, seed=seed)
    return keras.initializers.get({"class_name": name, "config": {"seed": seed}})


def make_optimizer(config: RunConfig) -> keras.optimizers.Optimizer:
    optimizers = {
        "adam": keras.optimizers.Adam,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }
    return optimizers[config.optimizer](learning_rate=config.learning_rate)


def build_model(config: RunConfig, input_dim: int, n_classes: int) -> keras.Model:
    """Builds the uncompiled MLP `dense_1, act_1, ..., dense_N, act_N, output`.

    Args:
        config: depth, width, activation, initializer and seed are used.
        input_dim: number of input features.
        n_classes: 2 gives one sigmoid unit, more gives a softmax over classes.

    Returns:
        A functional `keras.Model` named after the activation.
    """
    inputs = keras.Input(shape=(input_dim,), name="inputs")
    hidden = inputs
    fan_in = input_dim
    for index in range(1, config.depth + 1):
        hidden = keras.layers.Dense(
            config.width,
            kernel_initializer=make_initializer(
                config.initializer, fan_in, config.seed * 1000 + index),
            name=dense_name(index),
        )(hidden)
        hidden = keras.layers.Activation(config.activation, name=activation_name(index))(hidden)
        fan_in = config.width
    binary = n_classes == 2
    outputs = keras.layers.Dense(
        1 if binary else n_classes,
        activation="sigmoid" if binary else "softmax",
        kernel_initializer=make_initializer(config.initializer, fan_in, config.seed * 1000),
        dtype="float32",  # keeps the loss in float32 under mixed precision
        name=OUTPUT_NAME,
    )(hidden)
    return keras.Model(inputs, outputs, name=f"mlp_{config.activation}")


def compile_model(model: keras.Model, config: RunConfig, n_classes: int) -> keras.Model:
    """Compiles with the config's optimizer, the matching loss, accuracy and execution settings."""
    model.compile(
        optimizer=make_optimizer(config),
        loss=loss_name(n_classes),
        metrics=["accuracy"],
        steps_per_execution=config.steps_per_execution,
        jit_compile=config.jit_compile,
    )
    return model
