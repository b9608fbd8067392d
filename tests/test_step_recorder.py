"""`StepRecorder` changes no update: the same fit as the bare optimizer, bit for bit."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from callbacks import BatchLossLogger, StepRecorder


def toy_data():
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    return x, (x.sum(axis=1, keepdims=True) > 0).astype("float32")


def fitted(optimizer, callbacks=(), epochs=3, **compile_options):
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(6, activation="tanh"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=optimizer, loss="binary_crossentropy", steps_per_execution=4,
                  **compile_options)
    x, y = toy_data()
    history = model.fit(x, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0,
                        callbacks=list(callbacks))
    return model, history.history


@pytest.mark.parametrize("make", [lambda: keras.optimizers.Adam(0.01),
                                  lambda: keras.optimizers.SGD(0.1, momentum=0.9)])
def test_fit_through_the_recorder_equals_the_bare_optimizer(tmp_path, make):
    bare, bare_history = fitted(make())
    wrapped, wrapped_history = fitted(StepRecorder(make()),
                                      callbacks=[BatchLossLogger(tmp_path)])
    assert wrapped_history == bare_history
    for ours, theirs in zip(wrapped.get_weights(), bare.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    recorder = wrapped.optimizer
    assert int(recorder.iterations.numpy()) == int(bare.optimizer.iterations.numpy()) == 24
    assert [variable.numpy().tolist() for variable in recorder.inner_optimizer.variables] == [
        variable.numpy().tolist() for variable in bare.optimizer.variables]


def test_learning_rate_is_the_inner_optimizers_and_settable():
    recorder = StepRecorder(keras.optimizers.SGD(0.1))
    recorder.learning_rate = 0.25
    assert float(recorder.inner_optimizer.learning_rate.numpy()) == 0.25
    assert float(recorder.learning_rate.numpy()) == 0.25


def test_saved_and_loaded_with_its_inner_optimizer_and_state(tmp_path):
    model, _ = fitted(StepRecorder(keras.optimizers.Adam(0.01)), epochs=1)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.optimizer, StepRecorder)
    assert isinstance(loaded.optimizer.inner_optimizer, keras.optimizers.Adam)
    assert int(loaded.optimizer.iterations.numpy()) == 8
    for ours, theirs in zip(loaded.optimizer.variables, model.optimizer.variables, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_listeners_see_each_steps_loss_and_gradients_before_the_update(tmp_path):
    seen = []

    class Listener:
        def record_loss(self, loss):
            seen.append("loss")

        def record_gradients(self, grads, variables, applied):
            seen.append(("gradients", len(grads), len(variables), applied))

    recorder = StepRecorder(keras.optimizers.SGD(0.1))
    recorder.add_listener(Listener())
    fitted(recorder, epochs=1)
    assert seen == ["loss", ("gradients", 4, 4, None)]  # traced once, into the step
    recorder.remove_listener(recorder.listeners[0])
    assert recorder.listeners == ()


def test_refuses_what_it_cannot_wrap():
    with pytest.raises(ValueError, match="wraps a Keras optimizer"):
        StepRecorder(tf.Variable(1.0))
    with pytest.raises(ValueError, match="is a StepRecorder already"):
        StepRecorder(StepRecorder("sgd"))
    with pytest.raises(ValueError, match="takes no optimizer arguments"):
        StepRecorder("sgd", clipnorm=1.0)
