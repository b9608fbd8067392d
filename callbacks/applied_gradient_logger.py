"""`AppliedGradientLogger`: the gradients the optimizers apply, from inside the train step."""

from __future__ import annotations

import os
import warnings

import keras

from callbacks import backend, schedule, step_recorder, tags
from callbacks.event_writer import EventWriter
from callbacks.gradient_capture import OptimizerCapture

DRAIN_SLACK = 8  # spare slots of the ring of kept calls


class AppliedGradientLogger(keras.callbacks.Callback):
    """Logs the gradients each optimizer applies, with the tags of `GradientLogger`.

    Works with any training loop that hands its gradients to a Keras
    optimizer's `apply` or `apply_gradients`: `fit`'s own `train_step`, a
    custom `train_step` computing its own loss under a `GradientTape` (no
    compiled loss needed), and models with several optimizers (a GAN's
    generator and discriminator). The gradients are captured inside the
    compiled train step, as the optimizer receives them, with no extra
    forward or backward pass: under a `LossScaleOptimizer` unscaled (steps
    it skips for non-finite gradients are not logged), under a distribution
    strategy summed over the replicas (see `gradient_capture`). Each
    optimizer must be a `StepRecorder` (or a `LossScaleOptimizer` around
    one): for the duration of `fit` the capture listens to it, and the train
    function is traced anew with the capture in it.

    Into `<log_dir>/train`, for each trainable variable of the model that an
    optimizer updates, with `key = variable.path`:

    - histogram `gradients/<key>`, scalar `gradient_norm/<key>`,
    - scalar `gradient_norm/global`: the norm over all gradients of one
      `apply` call.

    With several optimizers, each one's tags carry its name:
    `gradients/<name>/<key>`, `gradient_norm/<name>/<key>`,
    `gradient_norm/<name>/global`, the name written once when `key` starts
    with it. Names are the keys of `optimizers`; by default, when each
    optimizer updates the variables of one sub-model of its own, that
    sub-model's name (a GAN's `generator` and `discriminator`: tags
    `gradients/generator/dense/kernel`, `gradient_norm/generator/global`),
    otherwise the model attribute holding the optimizer without its
    `_optimizer` suffix (`self.g_optimizer` -> `g`).

    The step of a value is the optimizer's own `iterations` before the
    update: the value at step k is the gradient computed on the weights
    after k updates and applied as update k + 1, as `GradientLogger`'s value
    at step k is the probe gradient on those weights. Logged at steps 0,
    `every_n_steps`, 2 `every_n_steps`, ... of each optimizer; an optimizer
    called several times per train step (a critic's inner loop) counts each
    call.

    Use a `log_dir` of its own when `GradientLogger` also logs in the same
    `fit`: both write the same tags.

    Args:
        log_dir: run folder.
        every_n_steps: optimizer steps between logs; `None` picks about
            twenty logs over the run.
        histogram_buckets: buckets per histogram.
        optimizers: a dict of name -> optimizer to record, e.g.
            `{"generator": gan.g_optimizer, "discriminator": gan.d_optimizer}`;
            by default `model.optimizer` and every optimizer the model holds
            as an attribute that is a `StepRecorder` (the ones its
            `train_step` never calls log nothing).

    Raises:
        ValueError: an argument is invalid; at `fit`, an optimizer
            accumulates gradients (`gradient_accumulation_steps`),
            `optimizers` holds something that is not a `StepRecorder`, or
            the model holds no `StepRecorder`.
        RuntimeError: Keras runs on another backend than TensorFlow.

    Example:

    ```python
    gan.compile(d_optimizer=StepRecorder(keras.optimizers.Adam(1e-3)),
                g_optimizer=StepRecorder(keras.optimizers.Adam(1e-3)))
    gan.fit(points, epochs=20, callbacks=[AppliedGradientLogger("logs/gan")])
    ```
    """

    def __init__(self, log_dir, every_n_steps=None, histogram_buckets=schedule.DEFAULT_BUCKETS,
                 optimizers=None):
        super().__init__()
        backend.require_tensorflow(type(self).__name__)
        log_dir = schedule.check_log_arguments(log_dir, every_n_steps, histogram_buckets)
        if optimizers is not None and (not isinstance(optimizers, dict) or not all(
                isinstance(name, str) and name and "/" not in name for name in optimizers)):
            raise ValueError("`optimizers` must be a dict of names (non-empty, without '/') to "
                             f"optimizers, received: {optimizers!r}")
        self.log_dir = log_dir
        self.every_n_steps = every_n_steps
        self.histogram_buckets = int(histogram_buckets)
        self.optimizers = optimizers
        # Creates its file at the first write: nothing exists when nothing is logged.
        self._train_writer = EventWriter(os.path.join(self.log_dir, "train"))
        self._captures = {}  # name -> OptimizerCapture, during fit
        self._labels = None

    def on_train_begin(self, logs=None):
        model = self.model
        every = schedule.resolve_every(self.every_n_steps, self.params)
        # Drained about once per `every` train steps: two slots per due step of an execution,
        # and spares for an optimizer called several times a step (a critic's loop).
        slots = DRAIN_SLACK + 2 * -(-max(1, int(model.steps_per_execution)) // every)
        self._drain_interval = every
        self._captures = {
            name: OptimizerCapture(optimizer, model.trainable_variables, every, slots,
                                   self.histogram_buckets, model.distribute_strategy)
            for name, optimizer in self._named_optimizers(model).items()}
        self._labels = None
        self._drained_at = 0
        for capture in self._captures.values():
            capture.install()
        model.make_train_function(force=True)

    def _named_optimizers(self, model) -> dict:
        if self.optimizers is not None:
            for name, optimizer in self.optimizers.items():
                if not isinstance(optimizer, keras.optimizers.Optimizer):
                    raise ValueError(f"`optimizers[{name!r}]` must be a Keras optimizer, "
                                     f"received: {type(optimizer).__name__}")
            return dict(self.optimizers)
        found, seen, plain = {}, set(), []
        attributes = [(name, value) for name, value in vars(model).items() if name != "optimizer"]
        for name, optimizer in [*attributes, ("optimizer", model.optimizer)]:
            if not isinstance(optimizer, keras.optimizers.Optimizer):
                continue
            recorder = step_recorder.find_recorder(optimizer)
            if recorder is None:
                plain.append(optimizer)
                continue
            if id(recorder) in seen:
                continue
            seen.add(id(recorder))
            label = name.lstrip("_").removesuffix("optimizer").rstrip("_") or name.lstrip("_")
            found[label] = optimizer
        if not found:  # the message names the model's optimizer, or the first one found
            step_recorder.require_recorder(plain[0] if plain else None, type(self).__name__)
        return found

    # No batch-end hook: Keras then runs the batch ends of the fit asynchronously, and the
    # host does not wait for every step. The records are read at a batch begin once per
    # `every` steps, and at epoch ends, where Keras waits for the step anyway.
    def on_epoch_begin(self, epoch, logs=None):
        self._drained_at = 0

    def on_train_batch_begin(self, batch, logs=None):
        if batch - self._drained_at >= self._drain_interval:
            self._write_records()
            self._drained_at = batch

    def on_epoch_end(self, epoch, logs=None):
        self._write_records()

    def _write_records(self):
        if self._labels is None:  # the train step is traced: the optimizers it calls are known
            self._labels = self._name_optimizers()
        for name, label in self._labels.items():
            capture = self._captures[name]
            records, lost = capture.drain()
            if lost:
                warnings.warn(f"AppliedGradientLogger: {lost} due logs of optimizer "
                              f"{capture.optimizer.name} found no free slot and were not "
                              "written (it steps several times per train step); raise "
                              "every_n_steps", stacklevel=2)
            keys = [tags.scoped(label, key) for key in tags.variable_keys(capture.variables)]
            for record in records:
                record_keys = [keys[index] for index in record.indices]
                scalars = [(tags.tag(tags.GRADIENT_NORM, key), norm)
                           for key, norm in zip(record_keys, record.norms)]
                scalars.append((tags.tag(tags.GRADIENT_NORM, tags.scoped(label, tags.GLOBAL)),
                                record.norms[-1]))
                self._train_writer.write(record.step, scalars, [
                    (tags.tag(tags.GRADIENTS, key), histogram)
                    for key, histogram in zip(record_keys, record.histograms)])

    def _name_optimizers(self) -> dict:
        """The tag scope of each optimizer the train step calls; "" when it is the only one."""
        called = {name: capture for name, capture in self._captures.items() if capture.recorded}
        if self.optimizers is not None:
            return {name: name for name in called}
        if len(called) == 1:
            return {name: "" for name in called}
        # The first part of the paths of its variables, when it is one and the others' differ.
        tops = {}
        for name, capture in called.items():
            firsts = {tags.variable_key(capture.variables[index]).split("/")[0]
                      for index in capture.recorded}
            tops[name] = firsts.pop() if len(firsts) == 1 else None
        if None not in tops.values() and len(set(tops.values())) == len(tops):
            return tops
        return {name: name for name in called}

    def on_train_end(self, logs=None):
        for capture in self._captures.values():
            capture.remove()
        self.model.make_train_function(force=True)  # the next fit traces the plain step
        self._write_records()
        self._captures = {}
        self._train_writer.close()
