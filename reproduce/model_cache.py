"""One compiled model per process for the runs whose traced functions would be identical.

Tracing Keras's train and evaluation steps costs seconds per run here, far
more than training these small MLPs. Runs that agree on `config.trace_key`
(architecture, shapes, optimizer, batch size, steps per execution, loggers)
therefore share one compiled model, whose traced functions Keras keeps
between `fit` calls. Each run gets the exact state a fresh model would have:
the weights of a freshly built, seeded model (building traces nothing) and
the optimizer's variables as they were before the first step. Results are
bit for bit those of a fresh model (tested).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses

import keras
import numpy as np
from tensorflow.python import pywrap_tfe

from reproduce import models
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
    initial = models.build_model(config, input_dim, n_classes)
    key = trace_key(config)
    entry = _models.get(key)
    if entry is None:
        models.compile_model(initial, config, n_classes)
        initial.optimizer.build(initial.trainable_variables)
        _models[key] = _Entry(initial, [variable.numpy() for variable in
                                        initial.optimizer.variables])
        while len(_models) > MAX_MODELS:
            _models.popitem(last=False)
        return initial
    _models.move_to_end(key)
    for variable, value in zip(entry.model.weights, initial.weights, strict=True):
        variable.assign(value)
    for variable, value in zip(entry.model.optimizer.variables, entry.optimizer_state,
                               strict=True):
        variable.assign(value)
    return entry.model


def set_random_seed(seed: int) -> None:
    """`keras.utils.set_random_seed`, keeping TensorFlow's kernel cache.

    `tf.random.set_seed` also clears the eager kernel cache (so that eager
    stateful random ops start over), after which every traced function is
    instantiated and optimised again on its next call: about 1 s per run of
    a cached model here. The cached models' runs use no stateful random
    kernel, so the cache is kept; the seeds are set as before (results are
    those of a fresh process, tested bit for bit).
    """
    with _kernel_cache_kept():
        keras.utils.set_random_seed(seed)


@contextlib.contextmanager
def _kernel_cache_kept():
    clear_caches = pywrap_tfe.TFE_ContextClearCaches
    pywrap_tfe.TFE_ContextClearCaches = lambda handle: None
    try:
        yield
    finally:
        pywrap_tfe.TFE_ContextClearCaches = clear_caches


def clear() -> None:
    """Forgets every cached model (e.g. before `keras.backend.clear_session`)."""
    _models.clear()
