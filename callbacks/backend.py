"""The one Keras backend these callbacks run on: TensorFlow."""

from __future__ import annotations

import keras


def require_tensorflow(logger: str) -> None:
    """Raises `RuntimeError` naming the backend unless Keras runs on TensorFlow.

    The loggers compute inside TensorFlow graphs (`tf.function`, `tf.Variable`
    buffers, `tf.GradientTape`); under JAX or PyTorch they would fail at the
    first log, after writing part of a run. Raised when a logger is created.
    """
    name = keras.backend.backend()
    if name != "tensorflow":
        raise RuntimeError(
            f"{logger} needs Keras's TensorFlow backend, but Keras runs on {name!r} "
            f"(KERAS_BACKEND={name}); set KERAS_BACKEND=tensorflow before Keras is imported")
