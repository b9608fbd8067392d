"""`BatchLossLogger`: the true loss of every training batch, as a TensorBoard scalar."""

from __future__ import annotations

import math
import os

import keras
import tensorflow as tf

from callbacks import backend, losses, tags
from callbacks.event_writer import EventWriter


class BatchLossLogger(keras.callbacks.Callback):
    """Logs each optimizer step's own batch loss as the scalar `batch_loss`.

    Keras's `logs["loss"]` at batch end is a running mean since the epoch
    began, and with `steps_per_execution > 1` batch callbacks fire only once
    per execution. This callback therefore captures the loss inside the
    compiled train step (it wraps the model's `compute_loss` for the duration
    of `fit`) into a small buffer variable, and writes one scalar per step at
    each batch end. The value at step k is the loss of the k-th batch computed
    with the weights before the k-th update, as the optimizer saw it
    (regularisation losses included); `first_nonfinite_step` is the first
    step whose loss was NaN or infinite. The capture is a plain variable update,
    so it also works in an XLA-compiled (`jit_compile=True`) step, where
    summary ops cannot run.

    Works on any model whose train step calls `compute_loss`, as Keras's own
    does (Sequential, functional, subclassed, several outputs).

    At the end of `fit` the plain train step is put back, which costs a new
    trace of it at the next `fit`. With `keep_capture=True` the capture stays
    on the model instead, and a later `fit` with a `BatchLossLogger` reuses
    the traced step: worth it when one model is fitted many times (the
    capture then also runs, unread, in fits without this callback).

    Args:
        log_dir: run folder; scalars go to `<log_dir>/train`, the folder
            Keras's `TensorBoard` callback writes training summaries to.
        keep_capture: leave the capture, and the traced step, on the model
            after `fit`.

    Raises:
        ValueError: `log_dir` is empty.
        RuntimeError: Keras runs on another backend than TensorFlow.

    Example:

    ```python
    model.fit(x, y, epochs=5, callbacks=[
        keras.callbacks.TensorBoard("logs/run"),
        BatchLossLogger("logs/run"),
    ])
    ```
    """

    def __init__(self, log_dir, keep_capture=False):
        super().__init__()
        backend.require_tensorflow(type(self).__name__)
        if not log_dir:
            raise ValueError(f"log_dir must be a folder path, received: {log_dir!r}")
        self.log_dir = os.fspath(log_dir)
        self.keep_capture = bool(keep_capture)
        # Creates its file at the first write: nothing exists when nothing is logged.
        self._train_writer = EventWriter(os.path.join(self.log_dir, "train"))
        self._buffer = None
        self._logged_step = 0
        self.first_nonfinite_step = None  # the first step whose loss was NaN or infinite

    def on_train_begin(self, logs=None):
        model = self.model
        capacity = max(1, int(model.steps_per_execution))
        buffer = model.__dict__.get(_BUFFER_ATTRIBUTE)  # a capture kept by an earlier fit
        if buffer is None or buffer.shape[0] != capacity:
            buffer = _install_capture(model, capacity)
        self._buffer = buffer
        self._logged_step = int(model.optimizer.iterations.numpy())
        self.first_nonfinite_step = None

    def on_train_batch_end(self, batch, logs=None):
        self._flush_new_steps()

    def _flush_new_steps(self):
        step = int(self.model.optimizer.iterations.numpy())
        if step > self._logged_step:
            values = self._buffer.numpy()
            steps = range(self._logged_step + 1, step + 1)
            losses = [values[(each - 1) % len(values)] for each in steps]
            self._train_writer.write_scalar_series(tags.BATCH_LOSS, steps, losses)
            self._logged_step = step
            if self.first_nonfinite_step is None:
                self.first_nonfinite_step = next(
                    (each for each, loss in zip(steps, losses) if not math.isfinite(loss)), None)

    def on_train_end(self, logs=None):
        self._flush_new_steps()
        if not self.keep_capture:
            _remove_capture(self.model)
        self._train_writer.close()


_BUFFER_ATTRIBUTE = "_batch_loss_buffer"  # on a model that carries the capture


def _install_capture(model, capacity: int) -> tf.Variable:
    """Wraps the model's `compute_loss` to record each step's loss; returns the buffer."""
    _remove_capture(model)  # one kept for another steps_per_execution
    with model.distribute_strategy.scope():
        # Per-replica losses are averaged into the buffer: the global batch's loss.
        buffer = tf.Variable(
            tf.zeros([capacity]),
            trainable=False,
            synchronization=tf.VariableSynchronization.ON_WRITE,
            aggregation=tf.VariableAggregation.MEAN,
            name="batch_loss_buffer",
        )
    original = model.compute_loss

    def compute_loss(x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = losses.compute_loss(original, x, y, y_pred, sample_weight, training)
        if training and loss is not None:
            # Read when traced: the optimizer of the compile in force.
            index = tf.reshape(tf.cast(model.optimizer.iterations % capacity, tf.int32), [1, 1])
            value = tf.reshape(losses.unscaled(loss), [1])
            buffer.assign(tf.tensor_scatter_nd_update(buffer, index, value))
        return loss

    model.compute_loss = compute_loss
    object.__setattr__(model, _BUFFER_ATTRIBUTE, buffer)  # not model state: past Keras's tracking
    model.make_train_function(force=True)
    return buffer


def _remove_capture(model) -> None:
    if model.__dict__.pop(_BUFFER_ATTRIBUTE, None) is None:
        return
    model.__dict__.pop("compute_loss", None)
    model.train_function = None  # the next fit traces the plain step again
