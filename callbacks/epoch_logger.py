"""`EpochLogger`: the epoch scalars of Keras's `TensorBoard` callback, without `tf.summary`."""

from __future__ import annotations

import os

import keras

from callbacks import backend
from callbacks.event_writer import EventWriter


class EpochLogger(keras.callbacks.Callback):
    """Writes what `keras.callbacks.TensorBoard(log_dir, write_graph=False)` writes by default.

    The same tags, folders and steps: at each epoch end `epoch_<name>` for
    every training entry of the epoch logs plus `epoch_learning_rate` in
    `<log_dir>/train`, `epoch_<name>` for every `val_<name>` entry in
    `<log_dir>/validation`; after each evaluation
    `evaluation_<name>_vs_iterations` at the optimizer's step in
    `<log_dir>/validation`. Each writer puts one epoch's values in one event.

    Keras's callback writes each value with an eager `tf.summary.scalar` call
    (about 1.5 ms each here): a quarter of the cost of a short run whose
    traced functions are reused. Use Keras's callback for anything else it
    does (graphs, profiles, its own histograms).

    Args:
        log_dir: run folder.

    Raises:
        ValueError: `log_dir` is empty.
        RuntimeError: Keras runs on another backend than TensorFlow.
    """

    def __init__(self, log_dir):
        super().__init__()
        backend.require_tensorflow(type(self).__name__)
        if not log_dir:
            raise ValueError("`log_dir` must name a folder, received an empty value")
        self.log_dir = os.fspath(log_dir)
        self._train_writer = EventWriter(os.path.join(self.log_dir, "train"))
        self._validation_writer = EventWriter(os.path.join(self.log_dir, "validation"))

    def on_epoch_end(self, epoch, logs=None):
        if not logs:
            return
        train = [(f"epoch_{name}", value) for name, value in logs.items()
                 if not name.startswith("val_")]
        learning_rate = _learning_rate(self.model.optimizer)
        if learning_rate is not None:
            train.append(("epoch_learning_rate", learning_rate))
        self._train_writer.write(epoch, train)
        self._validation_writer.write(epoch, [(f"epoch_{name[4:]}", value)
                                              for name, value in logs.items()
                                              if name.startswith("val_")])

    def on_test_end(self, logs=None):
        optimizer = self.model.optimizer
        if logs and optimizer is not None and hasattr(optimizer, "iterations"):
            self._validation_writer.write(
                int(optimizer.iterations.numpy()),
                [(f"evaluation_{name}_vs_iterations", value) for name, value in logs.items()])

    def on_train_end(self, logs=None):
        self._train_writer.close()  # a later fit writes new files and leaves these intact
        self._validation_writer.close()


def _learning_rate(optimizer):
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    return None
