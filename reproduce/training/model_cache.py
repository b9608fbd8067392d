"""One compiled model per process for the runs whose traced functions would be identical.

Tracing Keras's train and evaluation steps costs seconds per run here, far
more than training these small MLPs. Runs that agree on `config.trace_key`
(architecture, shapes, optimizer, batch size, steps per execution, loggers)
therefore share one compiled model, whose traced functions Keras keeps
between `fit` calls. Each run gets the exact state a fresh model would have:
the weights its seeded initializers give (`models.kernel_initializers`, zero
biases) and the optimizer's variables as they were before the first step.
Results are bit for bit those of a fresh model (tested).
"""

from __future__ import annotations

import collections
import dataclasses

import keras
import numpy as np

from reproduce.training import models
from reproduce.config import RunConfig, trace_key

MAX_MODELS = 16  # compiled models kept per process, least recently used dropped first


@dataclasses.dataclass
class _Entry:
    model: keras.Model
    optimizer_state: list[np.ndarray]  # the optimizer's variables before any step


_models: collections.OrderedDict[tuple, _Entry] = collections.OrderedDict()


def prepare_model(config: RunConfig, input_dim: int, n_classes: int) -> keras.Model:
    """Returns a compiled model for `config` holding its initial weights, reused when cached.

    Call it inside the strategy's scope, after seeding, as for a fresh model.
    """
    key = trace_key(config)
    entry = _models.get(key)
    if entry is None:
        model = models.build_model(config, input_dim, n_classes)
        models.compile_model(model, config, n_classes)
        model.optimizer.build(model.trainable_variables)
        _models[key] = _Entry(model, [variable.numpy() for variable in model.optimizer.variables])
        while len(_models) > MAX_MODELS:
            _models.popitem(last=False)
        return model
    _models.move_to_end(key)
    initial = _initial_weights(entry.model, config, input_dim, n_classes)
    for variable, value in zip(entry.model.weights, initial, strict=True):
        variable.assign(value)
    for variable, value in zip(entry.model.optimizer.variables, entry.optimizer_state,
                               strict=True):
        variable.assign(value)
    return entry.model


def _initial_weights(model: keras.Model, config: RunConfig, input_dim: int,
                     n_classes: int) -> list:
    """The values of `model.weights` that `models.build_model` would start from.

    Drawn from the seeded initializers, without building a model (which
    costs more than the draws), unless a weight is not one they cover.
    """
    values = {}
    for name, initializer in models.kernel_initializers(config, input_dim).items():
        layer = model.get_layer(name)
        values[id(layer.kernel)] = initializer(layer.kernel.shape, dtype=layer.kernel.dtype)
        if layer.bias is not None:
            values[id(layer.bias)] = np.zeros(layer.bias.shape, layer.bias.dtype)
    if values.keys() != {id(variable) for variable in model.weights}:
        return models.build_model(config, input_dim, n_classes).weights
    return [values[id(variable)] for variable in model.weights]


def clear() -> None:
    """Forgets every cached model (e.g. before `keras.backend.clear_session`)."""
    _models.clear()
