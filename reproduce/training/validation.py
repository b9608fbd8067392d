"""`EpochValidation`: `fit`'s per-epoch validation in one compiled call per epoch."""

from __future__ import annotations

import weakref

import keras
import tensorflow as tf

# model -> (weak references to its metrics when traced, the traced function)
_functions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class EpochValidation(keras.callbacks.Callback):
    """What `fit(validation_data=data)` does at each epoch end, for a fit on one device.

    Keras's `evaluate` resets the metrics eagerly, calls the traced test step
    once per `steps_per_execution` batches, reads each metric eagerly and
    runs its callback machinery: about 14 ms per epoch here, of which the
    evaluation proper is 4 ms. This callback runs the same `model.test_step`
    on the same batches, with the reset and the reads, in one compiled call,
    traced once per compiled model. The `val_<name>` values are Keras's bit
    for bit (tested).

    Put it first in `fit`'s callbacks, so that the others see the `val_`
    entries in their `on_epoch_end` logs, and pass it the callbacks whose
    `on_test_begin` and `on_test_end` `evaluate` would call (per-batch test
    hooks are not called). Not for distribution strategies.

    Args:
        data: the validation `tf.data.Dataset` of batches, as `fit` takes it.
        callbacks: callbacks to notify as `evaluate` does.
    """

    def __init__(self, data: tf.data.Dataset, callbacks=()):
        super().__init__()
        self.data = data
        self.test_callbacks = list(callbacks)

    def on_epoch_end(self, epoch, logs=None):
        for callback in self.test_callbacks:
            callback.on_test_begin()
        results = _traced_validation(self.model)(iter(self.data))
        # As Keras's `pythonify_logs`: sorted, Python floats.
        results = {name: float(value.numpy()) for name, value in sorted(results.items())}
        for callback in self.test_callbacks:
            callback.on_test_end(dict(results))
        if logs is not None:
            entries = {**logs, **{f"val_{name}": value for name, value in results.items()}}
            logs.clear()
            logs.update(sorted(entries.items()))  # `fit` hands callbacks sorted logs


def _traced_validation(model: keras.Model):
    """Returns `model`'s validation function, traced again only if the model was recompiled."""
    metrics = model.metrics
    cached = _functions.get(model)
    if cached is not None and [ref() for ref in cached[0]] == metrics:
        return cached[1]
    model_ref = weakref.ref(model)  # the function must not keep the model alive

    @tf.function(autograph=False)
    def validate(iterator):
        model = model_ref()
        model.reset_metrics()

        def step(optional):
            model.test_step(optional.get_value())
            return (iterator.get_next_as_optional(),)

        tf.while_loop(lambda optional: optional.has_value(), step,
                      (iterator.get_next_as_optional(),))
        return model.get_metrics_result()

    _functions[model] = ([weakref.ref(metric) for metric in metrics], validate)
    return validate
