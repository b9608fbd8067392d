"""`BatchLossLogger`: the true loss of every training batch, as a TensorBoard scalar."""

from __future__ import annotations

import math
import os
import warnings

import keras

from callbacks import backend, losses, step_recorder, tags
from callbacks.event_writer import EventWriter


class BatchLossLogger(keras.callbacks.Callback):
    """Logs each optimizer step's own batch loss as the scalar `batch_loss`.

    Keras's `logs["loss"]` at batch end is a running mean since the epoch
    began, and with `steps_per_execution > 1` batch callbacks fire only once
    per execution. This callback therefore captures the loss inside the
    compiled train step, through the model's `StepRecorder` (the optimizer
    wrapper through which Keras's train step passes its loss to
    `scale_loss`), into a small buffer variable, and writes one scalar per
    step at each batch end. The value at step k is the loss of the k-th batch
    computed with the weights before the k-th update, as the optimizer saw it
    (regularisation losses included); `first_nonfinite_step` is the first
    step whose loss was NaN or infinite. The capture is a plain variable
    update, so it also works in an XLA-compiled (`jit_compile=True`) step,
    where summary ops cannot run.

    Works on any model whose train step passes its loss to
    `optimizer.scale_loss`, as Keras's own does (Sequential, functional,
    subclassed, several outputs); a custom `train_step` that does not logs
    nothing, with a warning.

    The capture is added to the train step at the start of `fit`, which
    traces the step again, and removed at its end. With `keep_capture=True`
    it stays on the recorder instead, and a later `fit` with a
    `BatchLossLogger` reuses the traced step: worth it when one model is
    fitted many times (the capture then also runs, unread, in fits without
    this callback).

    Args:
        log_dir: run folder; scalars go to `<log_dir>/train`, the folder
            Keras's `TensorBoard` callback writes training summaries to.
        keep_capture: leave the capture, and the traced step, on the
            recorder after `fit`.

    Raises:
        ValueError: `log_dir` is empty; at `fit`, the model's optimizer is
            not a `StepRecorder` (a loss scaling around one does not do: see
            `StepRecorder` for mixed precision).
        RuntimeError: Keras runs on another backend than TensorFlow.

    Example:

    ```python
    model.compile(optimizer=StepRecorder(keras.optimizers.Adam()), loss="mse")
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
        self._capture = None
        self._recorder = None
        self._logged_step = 0
        self._warned = False
        self.first_nonfinite_step = None  # the first step whose loss was NaN or infinite

    def on_train_begin(self, logs=None):
        model = self.model
        self._recorder = recorder = step_recorder.require_recorder(
            model.optimizer, type(self).__name__)
        if model.optimizer is not recorder:
            raise ValueError(
                f"BatchLossLogger reads the loss the train step passes to scale_loss, which "
                f"{model.optimizer.name} ({type(model.optimizer).__name__}) takes before the "
                "StepRecorder inside it sees it: put the loss scaling inside, compile("
                "optimizer=StepRecorder(LossScaleOptimizer(optimizer)), auto_scale_loss=False)")
        capacity = max(1, int(model.steps_per_execution))
        kept = [each for each in recorder.listeners if isinstance(each, LossCapture)]
        if kept and kept[0].capacity == capacity:
            self._capture = kept[0]  # kept by an earlier fit: its traced step is reused
        else:
            for each in kept:  # kept for another steps_per_execution
                recorder.remove_listener(each)
            self._capture = LossCapture(recorder, capacity, model.distribute_strategy)
            recorder.add_listener(self._capture)
            model.make_train_function(force=True)
        self._logged_step = int(recorder.iterations.numpy())
        self._warned = False
        self.first_nonfinite_step = None

    def on_train_batch_end(self, batch, logs=None):
        self._flush_new_steps()

    def _flush_new_steps(self):
        step = int(self._recorder.iterations.numpy())
        if step <= self._logged_step:
            return
        if not self._capture.traced:
            if not self._warned:
                self._warned = True
                warnings.warn(f"BatchLossLogger: the train step of {self.model.name} does not "
                              "pass its loss to optimizer.scale_loss; no batch loss is "
                              "logged", stacklevel=2)
            return
        steps = range(self._logged_step + 1, step + 1)
        losses = self._capture.buffer.read(range(self._logged_step, step))  # before the updates
        self._train_writer.write_scalar_series(tags.BATCH_LOSS, steps, losses)
        self._logged_step = step
        if self.first_nonfinite_step is None:
            self.first_nonfinite_step = next(
                (each for each, loss in zip(steps, losses) if not math.isfinite(loss)), None)

    def on_train_end(self, logs=None):
        self._flush_new_steps()
        if not self.keep_capture:
            self._recorder.remove_listener(self._capture)
            self.model.make_train_function(force=True)  # the next fit traces the plain step
        self._train_writer.close()


class LossCapture:
    """A `StepRecorder` listener: each step's loss into a `StepBuffer`."""

    def __init__(self, recorder, capacity: int, strategy):
        self.buffer = step_recorder.StepBuffer(recorder, capacity, (), strategy,
                                               "batch_loss_buffer")
        self.traced = False  # whether a traced step passed its loss through here

    @property
    def capacity(self) -> int:
        return self.buffer.capacity

    def record_loss(self, loss):
        self.traced = True
        self.buffer.write(losses.unscaled(loss))
