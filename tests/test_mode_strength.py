"""`ModeStrengthLogger`: u_αᵀ W v_α at every step, against a numpy replay of the same training."""

import keras
import numpy as np
import pytest

from callbacks import BatchLossLogger, ModeStrengthLogger, StepRecorder, tags
from reproduce.runs import events

INPUTS, HIDDEN, OUTPUTS = 4, 3, 2
EXAMPLES, BATCH, EPOCHS, SPE = 8, 2, 3, 3  # 12 steps in executions of 3, 1 (epoch end), ...
LEARNING_RATE = 0.1


def tiny_problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(EXAMPLES, INPUTS)).astype("float32")
    y = rng.normal(size=(EXAMPLES, OUTPUTS)).astype("float32")
    u = np.linalg.qr(rng.normal(size=(OUTPUTS, OUTPUTS)))[0]  # outputs x modes
    v = np.linalg.qr(rng.normal(size=(INPUTS, INPUTS)))[0][:, :OUTPUTS]  # inputs x modes
    return x, y, u, v


def tiny_model(activation="linear", seed=1):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((INPUTS,))
    hidden = keras.layers.Dense(HIDDEN, use_bias=False, name="hidden")(inputs)
    hidden = keras.layers.Activation(activation)(hidden)
    outputs = keras.layers.Dense(OUTPUTS, use_bias=False, name="out")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(StepRecorder(keras.optimizers.SGD(LEARNING_RATE)), "mean_squared_error",
                  steps_per_execution=SPE)
    return model


def numpy_replay(kernels, x, y, u, v):
    """The strengths after each of the same SGD steps, in float64: (steps + 1, modes)."""
    first, second = (np.asarray(kernel, np.float64) for kernel in kernels)
    strengths = []
    for _ in range(EPOCHS):
        for start in range(0, EXAMPLES, BATCH):
            strengths.append(np.sum(v * (first @ second @ u), axis=0))
            xb, yb = x[start:start + BATCH], y[start:start + BATCH]
            error = 2 * (xb @ first @ second - yb) / error_count(yb)
            grad_second = (xb @ first).T @ error
            grad_first = xb.T @ (error @ second.T)
            first, second = first - LEARNING_RATE * grad_first, second - LEARNING_RATE * grad_second
    strengths.append(np.sum(v * (first @ second @ u), axis=0))
    return np.array(strengths)


def error_count(batch):
    return batch.size  # Keras's MSE: mean over the examples and the outputs


def test_logs_every_step_as_numpy_computes_it(tmp_path):
    x, y, u, v = tiny_problem()
    model = tiny_model()
    expected = numpy_replay([layer.kernel.numpy() for layer in model.layers
                             if isinstance(layer, keras.layers.Dense)], x, y, u, v)
    logger = ModeStrengthLogger(tmp_path, u, v, names=["s=2", "s=0.5"])
    model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0,
              callbacks=[logger])
    train = events.read_events(tmp_path / "train")
    assert set(train.scalars) == {"mode_strength/s=2", "mode_strength/s=0.5"}
    steps = EPOCHS * EXAMPLES // BATCH
    for index, name in enumerate(["s=2", "s=0.5"]):
        logged = train.scalars[tags.tag(tags.MODE_STRENGTH, name)]
        assert logged.steps.tolist() == list(range(steps + 1))  # each step once, 0 to the end
        np.testing.assert_allclose(logged.values, expected[:, index], rtol=1e-4, atol=1e-6)
    assert expected[-1, 0] != pytest.approx(expected[0, 0])  # the strengths did change
    assert model.optimizer.listeners == ()  # the next fit traces the plain step


def test_works_beside_batch_loss_logger_and_restores_the_model(tmp_path):
    x, y, u, v = tiny_problem()
    model = tiny_model("tanh")
    batch_loss = BatchLossLogger(tmp_path)
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0,
              callbacks=[batch_loss, ModeStrengthLogger(tmp_path, u, v)])
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0,
              callbacks=[ModeStrengthLogger(tmp_path / "again", u, v), batch_loss])
    train = events.read_events(tmp_path / "train")
    assert train.scalars["batch_loss"].steps.tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
    assert train.scalars["mode_strength/0"].steps.tolist() == [0, 1, 2, 3, 4]
    again = events.read_events(tmp_path / "again" / "train")
    assert again.scalars["mode_strength/1"].steps.tolist() == [4, 5, 6, 7, 8]
    # The first fit's last value and the second's first are the same weights.
    assert again.scalars["mode_strength/1"].values[0] == pytest.approx(
        train.scalars["mode_strength/1"].values[-1])
    assert model.optimizer.listeners == ()


@pytest.mark.parametrize("u, v, names, message", [
    (np.ones((2, 2)), np.ones((4, 3)), None, "one column per mode"),
    (np.ones(2), np.ones((4, 1)), None, "finite 2-D array"),
    (np.full((2, 1), np.nan), np.ones((4, 1)), None, "finite 2-D array"),
    (np.ones((2, 2)), np.ones((4, 2)), ["a", "a"], "2 distinct non-empty strings"),
])
def test_invalid_arguments_are_refused(tmp_path, u, v, names, message):
    with pytest.raises(ValueError, match=message):
        ModeStrengthLogger(tmp_path, u, v, names)


def test_a_model_that_is_not_dense_only_or_of_other_shape_is_refused_at_fit(tmp_path):
    x, y, u, v = tiny_problem()
    inputs = keras.Input((INPUTS,))
    normalised = keras.layers.BatchNormalization()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(OUTPUTS)(normalised))
    model.compile(StepRecorder(keras.optimizers.SGD()), "mse")
    with pytest.raises(ValueError, match="needs a network of Dense layers"):
        model.fit(x, y, verbose=0, callbacks=[ModeStrengthLogger(tmp_path, u, v)])
    with pytest.raises(ValueError, match="maps 4 inputs to 2 outputs"):
        tiny_model().fit(x, y, verbose=0,
                         callbacks=[ModeStrengthLogger(tmp_path, np.ones((3, 1)), v[:, :1])])


def test_a_model_compiled_without_a_step_recorder_is_refused_at_fit(tmp_path):
    x, y, u, v = tiny_problem()
    model = tiny_model()
    model.compile(keras.optimizers.SGD(LEARNING_RATE), "mse")
    with pytest.raises(ValueError, match=r"\(SGD\).*optimizer=callbacks.StepRecorder\(your_"):
        model.fit(x, y, verbose=0, callbacks=[ModeStrengthLogger(tmp_path, u, v)])
    assert not (tmp_path / "train").exists()
