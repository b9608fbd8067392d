"""Measures of mode-by-mode learning (Saxe, McClelland & Ganguli 2014), for claim C6.

A network trained on the `saxe` task logs, at every step, the strength
u_α(t) = u_αᵀ W(t) v_α of each mode of its collapsed map (`ModeStrengthLogger`).
Here: the paper's analytic trajectory of one hidden layer, the time constant
τ of Keras's loss, the effective initial strength u₀ a random start gives each
mode, and what C6 measures on a run: half-learning times and plateaus.

Keras's mean-squared error is L = (1/(P·N₃)) Σ_μ ‖y_μ − ŷ_μ‖² (mean over the
P examples and N₃ outputs), so a gradient step of size η on it is a step of
size 1/τ on the paper's ½ Σ_μ ‖y_μ − ŷ_μ‖², with τ = P·N₃/(2η) optimizer steps.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np


def time_constant(examples: int, outputs: int, learning_rate: float) -> float:
    """Saxe et al.'s τ, in optimizer steps, of full-batch gradient descent on Keras's MSE."""
    return examples * outputs / (2.0 * learning_rate)


def analytic_strength(steps, strength: float, initial: float, tau: float) -> np.ndarray:
    """The paper's u(t) = s·e^{2st/τ} / (e^{2st/τ} − 1 + s/u₀), for one hidden layer.

    Written as s / (1 + (s/u₀ − 1)·e^{−2st/τ}), which does not overflow.

    Args:
        steps: the times t, in optimizer steps.
        strength: the mode's target strength s.
        initial: its strength u₀ at t = 0 (0 < u₀ < s).
        tau: the time constant τ in steps (`time_constant`).
    """
    steps = np.asarray(steps, np.float64)
    return strength / (1.0 + (strength / initial - 1.0) * np.exp(-2.0 * strength * steps / tau))


def analytic_half_time(strength: float, initial: float, tau: float) -> float:
    """When `analytic_strength` reaches s/2: t = τ/(2s) · ln(s/u₀ − 1)."""
    return tau / (2.0 * strength) * math.log(strength / initial - 1.0)


def effective_initial_strengths(first_kernel, second_kernel, u, v) -> np.ndarray:
    """Each mode's effective u₀ in a one-hidden-layer network started at random.

    The analytic curve assumes both layers start aligned with the mode
    (a = W₁v = W₂ᵀu). From a random start, in the early, linear phase a + b
    grows as e^{st/τ} and a − b decays as e^{−st/τ}, so u = aᵀb ≈ ‖a + b‖²/4 ·
    e^{2st/τ}: the trajectory is the analytic one from u₀ = ‖a₀ + b₀‖²/4
    (the cross-talk between modes is left out).

    Args:
        first_kernel: Keras kernel of the hidden layer, inputs × hidden (W₁ᵀ).
        second_kernel: Keras kernel of the output layer, hidden × outputs (W₂ᵀ).
        u: output directions, outputs × modes.
        v: input directions, inputs × modes.

    Returns:
        u₀ per mode, shape (modes,).
    """
    a = np.asarray(first_kernel, np.float64).T @ np.asarray(v, np.float64)  # hidden × modes
    b = np.asarray(second_kernel, np.float64) @ np.asarray(u, np.float64)
    return np.sum((a + b) ** 2, axis=0) / 4.0


def half_time(steps, values, strength: float) -> int | None:
    """The first step at which `values` reach `strength`/2; None if they never do."""
    reached = np.flatnonzero(np.asarray(values) >= strength / 2.0)
    return int(np.asarray(steps)[reached[0]]) if len(reached) else None


@dataclasses.dataclass(frozen=True)
class Mode:
    """One mode of one run: its half-learning time and, for one hidden layer, the analytic fit."""

    strength: float  # s
    half_time: int | None  # first step with u ≥ s/2; None: not within the budget
    final: float  # u at the last step
    initial: float | None = None  # effective u₀ (one hidden layer)
    analytic_half_time: float | None = None
    max_deviation: float | None = None  # max over steps of |u − u_analytic| / s

    @property
    def scaled_time(self) -> float | None:
        """s · t_half, constant across modes if time ∝ 1/s."""
        return None if self.half_time is None else self.strength * self.half_time

    @property
    def half_time_error(self) -> float | None:
        """|t_half − analytic t_half| / t_half."""
        if self.half_time is None or self.analytic_half_time is None:
            return None
        return abs(self.half_time - self.analytic_half_time) / self.half_time

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "scaled_time": self.scaled_time,
                "half_time_error": self.half_time_error}


@dataclasses.dataclass(frozen=True)
class ModeRun:
    """C6's measurements of one `saxe` run."""

    run: str
    activation: str
    depth: int
    init_scale: float
    examples: int  # P: training examples, all in every batch
    outputs: int  # N₃: output units
    learning_rate: float  # η
    budget: int  # the last logged step
    modes: list[Mode]  # strongest first
    steps: np.ndarray = dataclasses.field(repr=False, compare=False)  # logged steps
    values: np.ndarray = dataclasses.field(repr=False, compare=False)  # (steps, modes)

    @property
    def tau(self) -> float:
        """Saxe et al.'s time constant τ = P·N₃/(2η), in optimizer steps."""
        return time_constant(self.examples, self.outputs, self.learning_rate)

    @property
    def plateau(self) -> int | None:
        """Steps before the strongest mode is half learned (its t_half); None: beyond budget."""
        return self.modes[0].half_time

    @property
    def analytic(self) -> bool:
        """Whether the analytic curves were fitted (one hidden layer, linear)."""
        return self.modes[0].initial is not None

    def to_json(self) -> dict:
        return {"run": self.run, "activation": self.activation, "depth": self.depth,
                "init_scale": self.init_scale, "examples": self.examples,
                "outputs": self.outputs, "learning_rate": self.learning_rate, "tau": self.tau,
                "budget": self.budget,
                "plateau": self.plateau, "modes": [mode.to_json() for mode in self.modes]}


def measure_modes(run: str, config, steps, values, strengths, examples: int, outputs: int,
                  initial: np.ndarray | None = None) -> ModeRun:
    """C6's measurements of one run from its logged mode strengths.

    Args:
        run: the run's name.
        config: its `RunConfig`.
        steps: the logged steps, shape (T,).
        values: the logged strengths, shape (T, modes), in the order of `strengths`.
        strengths: the modes' target strengths s_α.
        examples: P, the training examples (each step sees them all).
        outputs: N₃, the output units; with P and the config's η they give τ.
        initial: effective u₀ per mode, for the analytic fit (one hidden layer), or None.
    """
    steps = np.asarray(steps)
    values = np.asarray(values, np.float64).reshape(len(steps), len(strengths))
    tau = time_constant(examples, outputs, config.learning_rate)
    order = np.argsort(strengths)[::-1]
    modes = []
    for index in order:
        strength = float(strengths[index])
        column = values[:, index]
        fit = {}
        if initial is not None and 0 < initial[index] < strength:
            curve = analytic_strength(steps, strength, float(initial[index]), tau)
            fit = {"initial": float(initial[index]),
                   "analytic_half_time": analytic_half_time(strength, initial[index], tau),
                   "max_deviation": float(np.max(np.abs(column - curve)) / strength)}
        modes.append(Mode(strength, half_time(steps, column, strength), float(column[-1]), **fit))
    return ModeRun(run, config.activation, config.depth, config.init_scale, examples, outputs,
                   config.learning_rate, int(steps[-1]), modes, steps, values[:, order])


def analyse_mode_run(run, context) -> ModeRun | str:
    """C6's measurements of one `saxe` run, or why it has none.

    The modes' target strengths and directions come from the task regenerated
    from the run's config, once its data check out against the run's
    fingerprint; τ assumes full-batch gradient descent (SGD, a batch of every
    training example); for one hidden layer with linear activation, the
    effective u₀ comes from the run's step-0 weights.

    Args:
        run: a usable `runs.Run` on the `saxe` set.
        context: the `report.context.Context` (its data cache).

    Returns:
        A `ModeRun`, or a note saying why the run is not measured.
    """
    from callbacks import tags
    from reproduce import datasets
    from reproduce.errors import RunNotFoundError
    from reproduce.network import OUTPUT_NAME, dense_name

    config = run.config
    split = context.data.split(run)
    if split is None:
        return context.data.problems.get(run.name, "data could not be regenerated")
    if config.optimizer != "sgd" or config.batch_size < len(split.x_train):
        return "not full-batch gradient descent (SGD with a batch of every example)"
    task = datasets.saxe_task(config)
    names = [tags.tag(tags.MODE_STRENGTH, tags.mode_name(strength)) for strength in task.strengths]
    scalars = [run.events.train.scalars.get(name) for name in names]
    if any(series is None for series in scalars):
        return "no mode_strength scalars logged (ModeStrengthLogger)"
    steps = scalars[0].steps
    if any(not np.array_equal(series.steps, steps) for series in scalars):
        return "the modes were logged at different steps"
    values = np.stack([series.values for series in scalars], axis=1)
    initial = None
    if config.depth == 1 and config.activation == "linear":
        try:
            model = run.load_model(initial=True)
        except RunNotFoundError as error:
            return f"step-0 weights unreadable: {error}"
        initial = effective_initial_strengths(
            model.get_layer(dense_name(1)).kernel.numpy(),
            model.get_layer(OUTPUT_NAME).kernel.numpy(), task.u, task.v)
    return measure_modes(run.name, config, steps, values, task.strengths, len(split.x_train),
                         split.y_train.shape[1], initial)
