"""`build_model`: the MLP whose hidden activation the article is about.

Each hidden `Dense` layer has no activation of its own and is followed by its
own `Activation` layer, so pre-activations (`dense_i`) and activations
(`act_i`) are separately addressable by name.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from callbacks.step_recorder import StepRecorder, find_recorder

from reproduce.config import OUTPUT_UNITS, RunConfig
from reproduce.network import (  # noqa: F401
    OUTPUT_NAME, REGRESSION, activation_name, dense_name, loss_name)


def make_initializer(name: str, fan_in: int, seed: int, scale: float = 1.0):
    """Returns a seeded Keras initializer, its values multiplied by `scale`.

    `standard` is U[-1/sqrt(n), 1/sqrt(n)] (Glorot & Bengio 2010), `normal` is
    N(0, 1). Only Keras's own initializers are used, so a saved model loads
    without this package.
    """
    if name == "standard":
        limit = scale / math.sqrt(fan_in)
        return keras.initializers.RandomUniform(-limit, limit, seed=seed)
    if name == "normal":
        return keras.initializers.RandomNormal(0.0, scale, seed=seed)
    if scale == 1.0:
        return keras.initializers.get({"class_name": name, "config": {"seed": seed}})
    if name == "orthogonal":
        return keras.initializers.Orthogonal(gain=scale, seed=seed)
    # glorot_uniform and he_normal are VarianceScaling with variance factor 1 and 2.
    mode, factor, distribution = {"glorot_uniform": ("fan_avg", 1.0, "uniform"),
                                  "he_normal": ("fan_in", 2.0, "truncated_normal")}[name]
    return keras.initializers.VarianceScaling(factor * scale**2, mode, distribution, seed=seed)


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
        n_classes: 2 gives one sigmoid unit, more gives a softmax over classes,
            `REGRESSION` (0) a linear output of the dataset's output units.

    Returns:
        A functional `keras.Model` named after the activation.
    """
    initializers = kernel_initializers(config, input_dim)
    inputs = keras.Input(shape=(input_dim,), name="inputs")
    hidden = inputs
    for index in range(1, config.depth + 1):
        hidden = keras.layers.Dense(
            config.width,
            kernel_initializer=initializers[dense_name(index)],
            use_bias=config.use_bias,
            name=dense_name(index),
        )(hidden)
        hidden = keras.layers.Activation(config.activation, name=activation_name(index))(hidden)
    binary = n_classes == 2
    units, activation = ((OUTPUT_UNITS[config.dataset], "linear") if n_classes == REGRESSION
                         else (1, "sigmoid") if binary else (n_classes, "softmax"))
    outputs = keras.layers.Dense(
        units,
        activation=activation,
        kernel_initializer=initializers[OUTPUT_NAME],
        use_bias=config.use_bias,
        dtype="float32",  # keeps the loss in float32 under mixed precision
        name=OUTPUT_NAME,
    )(hidden)
    return keras.Model(inputs, outputs, name=f"mlp_{config.activation}")


def kernel_initializers(config: RunConfig, input_dim: int) -> dict:
    """The seeded kernel initializer of each `Dense` layer of `build_model`, by layer name.

    Its biases start at zero. Seeded with integers, an initializer gives the
    same values at every call: the model's initial weights without building it.
    """
    fan_ins = [input_dim] + [config.width] * config.depth
    seeds = [config.seed * 1000 + index for index in range(1, config.depth + 1)]
    names = [dense_name(index) for index in range(1, config.depth + 1)] + [OUTPUT_NAME]
    return {name: make_initializer(config.initializer, fan_in, seed, config.init_scale)
            for name, fan_in, seed in zip(names, fan_ins, [*seeds, config.seed * 1000],
                                          strict=True)}


def compile_model(model: keras.Model, config: RunConfig, n_classes: int) -> keras.Model:
    """Compiles with the config's optimizer, the matching loss, accuracy (of classifiers) and
    execution settings. The optimizer is wrapped in a `StepRecorder`, through which the batch
    loss and mode strength loggers see every step; it changes no update."""
    optimizer = make_optimizer(config)
    if config.mixed_precision:  # inside the recorder, which then sees the loss before scaling
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer, name="loss_scale_optimizer")
    model.compile(
        optimizer=StepRecorder(optimizer),
        auto_scale_loss=False,
        loss=loss_name(n_classes),
        metrics=[] if n_classes == REGRESSION else ["accuracy"],
        steps_per_execution=config.steps_per_execution,
        jit_compile=config.jit_compile,
    )
    return model


def build_state(model: keras.Model, element_spec) -> None:
    """Creates a compiled model's optimizer, loss and metric variables before `fit`.

    Keras creates the compiled metrics' variables in the first trace of the
    train step, after which `tf.function` traces the whole step a second
    time (about 0.35 s per new MLP here); nor can variables be created
    inside `strategy.run`. A batch of zeros shaped like `element_spec` (x, y
    and optional sample weights) stands in for the data, so no batch is
    drawn from the pipeline (each draw uses up a seeded shuffle order).
    Metrics are reset afterwards; nothing else changes. A model already
    built (a reused one) is left alone.
    """
    parts = [model, model.optimizer, *model.metrics]
    if all(getattr(part, "built", True) for part in parts):
        return
    batch = keras.tree.map_structure(
        lambda spec: np.zeros([1, *spec.shape[1:]], spec.dtype.as_numpy_dtype), element_spec)
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
    with model.distribute_strategy.scope():
        y_pred = model(x, training=False)
        model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False)
        model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        model.optimizer.build(model.trainable_variables)
    model.reset_metrics()


def without_recorder(model: keras.Model) -> keras.Model:
    """A copy of `model` compiled with the optimizer its `StepRecorder` wraps, state included.

    What a run saves: the copy's `.keras` file loads, compiled, in plain Keras. The copy
    has the model's weights and the inner optimizer's variables; the model is not changed.
    """
    recorder = find_recorder(model.optimizer)
    if recorder is None:
        return model
    inner = recorder.inner_optimizer
    plain = keras.models.clone_model(model)
    plain.set_weights(model.get_weights())
    compile_config = dict(model.get_compile_config())
    compile_config["optimizer"] = keras.saving.serialize_keras_object(inner)
    plain.compile_from_config(compile_config)  # builds the optimizer (not twice: a loss
    if not plain.optimizer.built:              # scaling's build adds its variables again)
        plain.optimizer.build(plain.trainable_variables)
    for copy, variable in zip(plain.optimizer.variables, inner.variables, strict=True):
        copy.assign(variable)
    return plain
