"""`ProbeLogger`: what the gradient, weight and activation loggers share.

A fixed probe batch, a lazily created writer into `<log_dir>/train`, and the
schedule: step 0 (the initial weights), every `every_n_steps` optimizer
steps, and the final weights at the end of training. Subclasses implement
`_compute()`, which computes every value of one log in a single compiled call
(on the model's device, histograms bucketed there too); the host then writes
them as events in one go.
"""

from __future__ import annotations

import math
import os

import keras
import numpy as np
import tensorflow as tf

from callbacks.event_writer import EventWriter
from callbacks.probe import DEFAULT_PROBE_SIZE, make_probe

DEFAULT_BUCKETS = 30  # TensorBoard's own default
LOGS_PER_RUN = 20  # target of the automatic frequency, besides step 0 and the end


def _check_positive_int(name, value, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, received: {name}={value!r}")


class ProbeLogger(keras.callbacks.Callback):
    """Base class of the callbacks that log values computed on a probe batch.

    Args:
        log_dir: run folder; summaries go to `<log_dir>/train`, where Keras's
            `TensorBoard` callback writes its training summaries.
        probe: `(x, y)` arrays, `y` as the loss expects. When longer than
            `probe_size`, `probe_size` examples are chosen with `seed`, so
            passing the training set gives the default probe.
        every_n_steps: optimizer steps between logs. `None` picks about
            twenty logs over the run. With `steps_per_execution > 1` a log
            happens at the first batch end at or after each multiple, and is
            stamped with the true optimizer step.
        histogram_buckets: buckets per histogram summary.
        probe_size: largest probe batch kept from `probe`.
        seed: chooses the probe examples.
    """

    def __init__(
        self,
        log_dir,
        probe,
        every_n_steps=None,
        histogram_buckets=DEFAULT_BUCKETS,
        probe_size=DEFAULT_PROBE_SIZE,
        seed=0,
    ):
        super().__init__()
        if not log_dir:
            raise ValueError(f"`log_dir` must be a folder path, received: {log_dir!r}")
        _check_positive_int("every_n_steps", every_n_steps, allow_none=True)
        _check_positive_int("histogram_buckets", histogram_buckets)
        _check_positive_int("probe_size", probe_size)
        self.log_dir = os.fspath(log_dir)
        self.every_n_steps = every_n_steps
        self.histogram_buckets = int(histogram_buckets)
        self.probe_x, self.probe_y = self._validate_probe(probe, probe_size, seed)
        self._writer = None
        self._function = None
        self._every = None
        self._next_step = None
        self._last_logged_step = None

    @staticmethod
    def _validate_probe(probe, probe_size, seed):
        if not isinstance(probe, (tuple, list)) or len(probe) != 2:
            raise ValueError(
                "`probe` must be a pair (x, y) of arrays, received: "
                f"{type(probe).__name__}"
            )
        x, y = (np.asarray(part) for part in probe)
        if x.ndim < 2 or len(x) == 0:
            raise ValueError(
                "`probe` x must have shape (examples, features...) with at least one "
                f"example, received shape {x.shape}"
            )
        if y.ndim < 1 or len(y) != len(x):
            raise ValueError(
                f"`probe` x and y must hold the same number of examples, received "
                f"x shape {x.shape} and y shape {y.shape}"
            )
        return make_probe(x, y, probe_size, seed)

    @property
    def _train_writer(self) -> EventWriter:
        # The file is created on the first write, so nothing exists when nothing is logged.
        if self._writer is None:
            self._writer = EventWriter(os.path.join(self.log_dir, "train"))
        return self._writer

    def _check_probe_fits(self, model):
        expected = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else None
        if expected is not None and tuple(self.probe_x.shape[1:]) != expected:
            raise ValueError(
                f"`probe` x has example shape {tuple(self.probe_x.shape[1:])} but "
                f"{model.name} expects {expected}"
            )

    def _resolve_every(self) -> int:
        if self.every_n_steps is not None:
            return self.every_n_steps
        total = (self.params.get("epochs") or 1) * (self.params.get("steps") or 0)
        if not total:
            return 100
        return max(1, math.ceil(total / LOGS_PER_RUN))

    def _current_step(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def on_train_begin(self, logs=None):
        self._check_probe_fits(self.model)
        self._every = self._resolve_every()
        self._last_logged_step = None
        self._scalar_tags, self._histogram_tags = self._prepare(self.model)
        self._function = tf.function(self._compute, autograph=False)
        step = self._current_step()
        self._log(step)
        self._next_step = (step // self._every + 1) * self._every

    def on_train_batch_end(self, batch, logs=None):
        step = self._current_step()
        if step >= self._next_step:
            self._log(step)
            self._next_step = (step // self._every + 1) * self._every

    def on_train_end(self, logs=None):
        step = self._current_step()
        if step != self._last_logged_step:
            self._log(step)
        if self._writer is not None:
            self._writer.close()  # a later fit writes a new file and leaves this one intact
        self._function = None

    def _log(self, step: int) -> None:
        scalar_values, histogram_values = (tensor.numpy() for tensor in self._function())
        scalars = [(tag, value) for tag, value in zip(self._scalar_tags, scalar_values.tolist())
                   if self._should_write(tag)]
        self._train_writer.write(step, scalars, zip(self._histogram_tags, histogram_values))
        self._last_logged_step = step

    def _should_write(self, scalar_tag: str) -> bool:
        """Whether to write `scalar_tag` in the log being written."""
        return True

    def _prepare(self, model) -> tuple[list[str], list[str]]:
        """Sets up per-fit state; returns the scalar and histogram tags `_compute` fills."""
        raise NotImplementedError

    def _compute(self):
        """Returns (scalars of shape (T,), histograms of shape (S, k, 3)) for one log.

        Traced once per fit, without autograph; the order matches the tags
        `_prepare` returned.
        """
        raise NotImplementedError

    def _probe_loss(self, model, y_pred):
        """The compiled loss on the probe, unscaled from any distribution strategy."""
        loss = model.compute_loss(
            x=self.probe_x, y=self.probe_y, y_pred=y_pred, sample_weight=None, training=False)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return tf.cast(loss, tf.float32) * replicas
