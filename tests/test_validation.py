"""`EpochValidation` gives `fit(validation_data=...)`'s numbers and hooks, bit for bit."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from callbacks import EpochLogger
from reproduce.runs import events
from reproduce.training.validation import EpochValidation


class HookRecorder(keras.callbacks.Callback):
    """Records the test hooks and the epoch logs, as the later callbacks of a fit see them."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def on_test_begin(self, logs=None):
        self.calls.append(("test_begin",))

    def on_test_end(self, logs=None):
        self.calls.append(("test_end", logs))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, list(logs.items())))


def fit(log_dir, ours: bool, regression: bool = False, steps_per_execution: int = 4):
    keras.backend.clear_session()
    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3)).astype("float32")
    y = (rng.normal(size=(120, 2)) if regression else rng.integers(0, 3, 120)).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="tanh"),
                              keras.layers.Dense(2 if regression else 3)])
    if regression:
        model.compile("adam", "mse", metrics=["mae"], steps_per_execution=steps_per_execution)
    else:
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"], steps_per_execution=steps_per_execution)
    train = tf.data.Dataset.from_tensor_slices((x[:80], y[:80])).batch(16)
    validation = tf.data.Dataset.from_tensor_slices((x[80:], y[80:])).batch(16)  # 16+16+8
    hooks = HookRecorder()
    callbacks = [EpochLogger(log_dir), hooks]
    if ours:
        history = model.fit(train, epochs=3, verbose=0, shuffle=False,
                            callbacks=[EpochValidation(validation, callbacks), *callbacks])
    else:
        history = model.fit(train, validation_data=validation, epochs=3, verbose=0, shuffle=False,
                            callbacks=callbacks)
    return history.history, hooks.calls


@pytest.mark.parametrize("regression, steps_per_execution", [(False, 4), (True, 1)])
def test_validation_matches_keras_fit_bit_for_bit(tmp_path, regression, steps_per_execution):
    keras_history, keras_calls = fit(tmp_path / "keras", False, regression, steps_per_execution)
    our_history, our_calls = fit(tmp_path / "ours", True, regression, steps_per_execution)

    assert list(our_history) == list(keras_history)  # same keys, same order
    assert "val_loss" in our_history and len(our_history["val_loss"]) == 3
    assert our_history == keras_history  # exact floats
    assert our_calls == keras_calls  # test hooks with the same logs; epoch logs in order
    for folder in ("train", "validation"):
        keras_events = events.read_events(tmp_path / "keras" / folder).scalars
        our_events = events.read_events(tmp_path / "ours" / folder).scalars
        assert our_events.keys() == keras_events.keys()
        for tag, series in keras_events.items():
            np.testing.assert_array_equal(our_events[tag].steps, series.steps)
            np.testing.assert_array_equal(our_events[tag].values, series.values)
