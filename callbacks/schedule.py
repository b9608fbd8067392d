"""When the loggers log: argument checks, the automatic frequency, the step of a log."""

from __future__ import annotations

import math
import os

import keras
import numpy as np

DEFAULT_BUCKETS = 30  # TensorBoard's own default
LOGS_PER_RUN = 20  # target of the automatic frequency, besides step 0 and the end


def check_positive_int(name, value, allow_none=False):
    """Raises `ValueError` naming `name` unless `value` is a positive integer (or allowed None)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, received: {name}={value!r}")


def check_log_arguments(log_dir, every_n_steps, histogram_buckets) -> str:
    """Checks what every histogram logger takes; returns `log_dir` as a path string.

    Raises:
        ValueError: naming the argument and the value received.
    """
    if not log_dir:
        raise ValueError(f"`log_dir` must be a folder path, received: {log_dir!r}")
    check_positive_int("every_n_steps", every_n_steps, allow_none=True)
    check_positive_int("histogram_buckets", histogram_buckets)
    return os.fspath(log_dir)


def resolve_every(every_n_steps, params) -> int:
    """`every_n_steps`, or, when None, about `LOGS_PER_RUN` logs over the `fit` of `params`."""
    if every_n_steps is not None:
        return every_n_steps
    params = params or {}
    total = (params.get("epochs") or 1) * (params.get("steps") or 0)
    if not total:
        return 100
    return max(1, math.ceil(total / LOGS_PER_RUN))


def has_own_train_step(model) -> bool:
    """Whether `model`'s class overrides Keras's `train_step` (a custom training loop)."""
    return type(model).train_step is not keras.Model.train_step


class StepClock:
    """The step a log is stamped with: `model.optimizer.iterations`, as Keras's TensorBoard does.

    A custom `train_step` may not step `model.optimizer` at all (a GAN that
    steps optimizers of its own, while `compile()` left the default one
    unused). When such a model's optimizer has not moved after the first
    batch, the clock counts the train steps run instead, from
    `initial_epoch * steps` of the `fit` on, for the rest of the `fit`.
    """

    def __init__(self, model, params):
        self.model = model
        self._start = self._iterations()
        self._custom = has_own_train_step(model)
        params = params or {}
        self._counted_start = (params.get("initial_epoch") or 0) * (params.get("steps") or 0)
        self._counting = None  # decided at the first batch end
        self._epoch_offset = 0
        self._last_batch = -1

    def _iterations(self) -> int:
        optimizer = self.model.optimizer
        return int(optimizer.iterations.numpy()) if optimizer is not None else 0

    def epoch_began(self) -> None:
        self._epoch_offset += self._last_batch + 1
        self._last_batch = -1

    def batch_ended(self, batch: int) -> None:
        """Notes that the epoch's batches up to index `batch` (Keras's `end_step`) have run."""
        self._last_batch = batch
        if self._counting is None:
            self._counting = self._custom and self._iterations() == self._start

    def now(self) -> int:
        if self._counting:
            return self._counted_start + self._epoch_offset + self._last_batch + 1
        return self._iterations()
