"""C6's measures (`report.mode_dynamics`) against numpy simulations of the same gradient descent,
the `saxe` task's data, and the C6 and C7 rules."""

import math

import numpy as np
import pytest

from reproduce import datasets
from reproduce.config import RunConfig
from reproduce.report import c6_deep_linear_dynamics as c6
from reproduce.report import c7_sigmoid_saturation as c7
from reproduce.report import mode_dynamics
from reproduce.report.saturation import SaturationRun, saturated

SAXE = RunConfig(dataset="saxe", activation="linear", depth=1, width=16, optimizer="sgd",
                 learning_rate=2.0, batch_size=32, initializer="normal", init_scale=1e-3,
                 use_bias=False)


def simulate_two_layers(first, second, target, tau, steps):
    """Full-batch gradient descent on ½‖target − W₂W₁‖² (whitened inputs) with step 1/τ.

    Returns the end-to-end maps W₂W₁ after 0, 1, ..., `steps` steps.
    """
    maps = []
    for _ in range(steps + 1):
        maps.append(second @ first)
        error = target - second @ first
        first, second = first + second.T @ error / tau, second + error @ first.T / tau
    return np.array(maps)


def test_analytic_curve_is_the_gradient_descent_of_one_aligned_mode():
    # One mode started aligned (a = b = √u₀): the paper's exact reduction. A large τ makes
    # gradient descent follow the gradient flow the formula solves.
    strength, initial, tau, steps = 3.0, 1e-4, 2000.0, 12000
    a = b = math.sqrt(initial)
    simulated = []
    for _ in range(steps + 1):
        simulated.append(a * b)
        a, b = a + (strength - a * b) * b / tau, b + (strength - a * b) * a / tau
    analytic = mode_dynamics.analytic_strength(np.arange(steps + 1), strength, initial, tau)
    assert np.max(np.abs(np.array(simulated) - analytic)) < 0.01 * strength
    half = mode_dynamics.half_time(np.arange(steps + 1), simulated, strength)
    assert half == pytest.approx(mode_dynamics.analytic_half_time(strength, initial, tau), rel=0.01)
    assert analytic[-1] == pytest.approx(strength, rel=1e-3)


def test_effective_initial_strength_predicts_a_random_start():
    rng = np.random.default_rng(1)
    size, tau, strengths = 16, 128.0, np.array([5.0, 2.0, 0.5])
    u = np.linalg.qr(rng.normal(size=(size, size)))[0][:, :3]
    v = np.linalg.qr(rng.normal(size=(size, size)))[0][:, :3]
    first, second = rng.normal(scale=1e-3, size=(2, size, size))  # W₁ (hidden x in), W₂
    maps = simulate_two_layers(first, second, u @ np.diag(strengths) @ v.T, tau, 2000)
    measured = np.einsum("ia,tij,ja->ta", u, maps, v)
    # Keras kernels are the transposes: W₁ᵀ (in x hidden) and W₂ᵀ (hidden x out).
    initial = mode_dynamics.effective_initial_strengths(first.T, second.T, u, v)
    assert np.all(initial > 0) and np.all(initial < 1e-4)
    steps = np.arange(len(measured))
    # P·N₃/(2η) = 32·16/(2·2) = 128 = tau: the simulation's step.
    run = mode_dynamics.measure_modes("sim", SAXE, steps, measured, strengths, 32, 16, initial)
    assert run.tau == tau
    assert [mode.strength for mode in run.modes] == [5.0, 2.0, 0.5]
    for mode in run.modes:
        assert mode.half_time is not None and mode.half_time_error < 0.1
        assert mode.max_deviation < 0.2
    scaled = [mode.scaled_time for mode in run.modes]
    assert max(scaled) / min(scaled) < 1.5  # time ∝ 1/s, up to ln(s/u₀)
    assert run.plateau == run.modes[0].half_time


def test_time_constant_converts_keras_mse_steps_to_the_papers_units():
    """One SGD step on Keras's MSE over the saxe set equals a 1/τ step of the paper's equation."""
    import keras
    import tensorflow as tf

    data = datasets.load_dataset(SAXE)
    rng = np.random.default_rng(2)
    first = rng.normal(scale=0.1, size=(16, 16)).astype("float32")  # Keras kernels, x K1 K2
    second = rng.normal(scale=0.1, size=(16, 16)).astype("float32")
    kernels = [tf.Variable(first), tf.Variable(second)]
    with tf.GradientTape() as tape:
        predicted = data.x_train @ kernels[0] @ kernels[1]
        loss = tf.reduce_mean(keras.losses.mean_squared_error(data.y_train, predicted))
    gradients = tape.gradient(loss, kernels)
    tau = mode_dynamics.time_constant(len(data.x_train), 16, SAXE.learning_rate)
    assert tau == 128.0
    # The paper: τ dW₂/dt = (Σ³¹ − W₂W₁Σ¹¹)W₁ᵀ with W = Kᵀ, Σ¹¹ = I, Σ³¹ = U S Vᵀ.
    w1, w2 = first.T.astype(np.float64), second.T.astype(np.float64)
    correlation = datasets.saxe_task(SAXE).matrix
    paper_step_w2 = (correlation - w2 @ w1) @ w1.T / tau
    keras_step_w2 = -SAXE.learning_rate * gradients[1].numpy().T
    np.testing.assert_allclose(keras_step_w2, paper_step_w2, atol=1e-6)


def test_saxe_set_is_whitened_and_its_correlation_is_the_task_map():
    data = datasets.load_dataset(SAXE)
    task = datasets.saxe_task(SAXE)
    x, y = data.x_train.astype(np.float64), data.y_train.astype(np.float64)
    assert x.shape == (32, 16) and y.shape == (32, 16) and data.n_classes == 0
    np.testing.assert_allclose(x.T @ x, np.eye(16), atol=1e-6)  # Σ¹¹ = I
    np.testing.assert_allclose(y.T @ x, task.matrix, atol=1e-5)  # Σ³¹ = U S Vᵀ
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-7)
    np.testing.assert_allclose(np.linalg.svd(task.matrix, compute_uv=False)[:5],
                               datasets.SAXE_STRENGTHS, rtol=1e-6)
    np.testing.assert_allclose(data.x_val.T @ data.x_val, np.eye(16), atol=1e-6)
    assert datasets.fingerprint(data) == datasets.fingerprint(datasets.load_dataset(SAXE))
    other = datasets.load_dataset(SAXE.replace(seed=1))
    assert not np.allclose(other.x_train, data.x_train)


def test_half_time_is_the_first_step_at_half_strength():
    assert mode_dynamics.half_time([0, 10, 20, 30], [0.0, 0.9, 1.0, 2.0], 2.0) == 20
    assert mode_dynamics.half_time([0, 10], [0.0, 0.9], 2.0) is None


def test_c6_rule():
    assert c6.judge(True, True, True) == "supported"
    assert c6.judge(True, False, None) == "partially supported"
    assert c6.judge(False, False, False) == "refuted"
    assert c6.judge(None, True, True) == "insufficient data"
    assert c6.plateaus_grow({1: 90, 2: 400, 3: None, 4: None})
    assert not c6.plateaus_grow({1: 90, 2: 80})
    assert not c6.plateaus_grow({1: None, 2: 4000})


def saturation_run(activation, initializer, top_means, backprop_std):
    means = [[0.5, 0.5, 0.5]] * 2 + [top_means]
    return SaturationRun("run", "digits", activation, initializer, 3, 8, [0, 10, 20],
                         means,
                         [[0.1] * 3] * 3, [[0.0] * 3] * 3, backprop_std, [1.0, 1.0, 1.0], 0.1)


def test_c7_rule():
    saturated = saturation_run("sigmoid", "standard", [0.5, 0.3, 0.2], [1e-4, 1e-3, 1e-2])
    assert c7.saturates(saturated) and saturated.top_layer_drop(0.25) == 20
    assert not c7.saturates(saturation_run("sigmoid", "standard", [0.5, 0.4, 0.3], [1, 1, 1]))
    shrinking = saturation_run("tanh", "standard", [0, 0, 0], [0.1, 0.5, 1.0])
    constant = saturation_run("tanh", "glorot_uniform", [0, 0, 0], [0.7, 0.9, 1.0])
    assert shrinking.backprop_ratio == pytest.approx(0.1)
    assert c7.gradients_as_the_paper(shrinking, constant)
    assert not c7.gradients_as_the_paper(constant, constant)
    assert c7.judge(True, True) == "supported"
    assert c7.judge(False, True) == "partially supported"
    assert c7.judge(False, False) == "refuted"
    assert c7.judge(None, True) == "insufficient data"


@pytest.mark.parametrize("activation, squash", [("tanh", np.tanh),
                                                ("sigmoid", lambda z: 1 / (1 + np.exp(-z)))])
def test_saturated_share_of_a_histogram_is_the_share_of_values_near_the_range_ends(
        activation, squash):
    values = squash(np.random.default_rng(3).normal(scale=2.0, size=20_000))
    counts, edges = np.histogram(values, bins=200)
    buckets = np.stack([edges[:-1], edges[1:], counts], axis=1)
    near_ends = np.abs(2 * values - 1 if activation == "sigmoid" else values) >= 0.9
    assert saturated(buckets, activation) == pytest.approx(near_ends.mean(), abs=0.01)
    assert 0.1 < near_ends.mean() < 0.6  # the check is not trivially 0 or 1
