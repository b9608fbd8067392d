"""Measures of saturation and gradient flow (Glorot & Bengio 2010), for claim C7.

Read back from what `ActivationLogger` and `GradientLogger` wrote on the probe
batch: per hidden layer, the activations' mean and standard deviation at every
log (the paper's Fig. 2), the back-propagated gradient dLoss/df(z) at step 0
(its Fig. 7) and the weight gradient dLoss/dW at step 0. Moments come from the
logged histograms, each bucket's count at its centre (`events.summarize_histogram`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from callbacks import tags
from reproduce.network import activation_name, dense_name
from reproduce.runs import events

SATURATING = ("sigmoid", "tanh", "softsign")  # the paper's three activations
# A unit is counted as saturated within 10% of its activation's range ends: |f| ≥ 0.9 for tanh
# and softsign (range (−1, 1)), f ≤ 0.05 or f ≥ 0.95 for the sigmoid (range (0, 1)).
SATURATION_LEVEL = 0.9


@dataclasses.dataclass(frozen=True)
class SaturationRun:
    """C7's measurements of one run: activations over training, gradients at step 0."""

    run: str
    dataset: str
    activation: str
    initializer: str
    depth: int
    width: int
    steps: list[int]  # the logged steps of the activations
    activation_mean: list[list[float]]  # [layer][log]: mean of f(z) on the probe
    activation_std: list[list[float]]  # [layer][log]
    saturated_share: list[list[float]]  # [layer][log]: share of activations near ±1 (`saturated`)
    backprop_std: list[float]  # [layer]: std of dLoss/df(z) at step 0
    weight_gradient_variance: list[float]  # [layer]: variance of dLoss/dW at step 0
    val_accuracy: float | None

    @property
    def backprop_ratio(self) -> float:
        """std of the back-propagated gradient, first hidden layer over last."""
        return self.backprop_std[0] / self.backprop_std[-1]

    @property
    def weight_gradient_ratio(self) -> float:
        """Variance of the weight gradient, first hidden layer over last."""
        return self.weight_gradient_variance[0] / self.weight_gradient_variance[-1]

    def top_layer_drop(self, threshold: float) -> int | None:
        """The first logged step at which the top hidden layer's mean is ≤ `threshold`."""
        below = [step for step, mean in zip(self.steps, self.activation_mean[-1])
                 if mean <= threshold]
        return below[0] if below else None

    def to_json(self) -> dict:
        return {"run": self.run, "dataset": self.dataset, "activation": self.activation,
                "initializer": self.initializer, "depth": self.depth, "width": self.width,
                "steps": self.steps,
                "activation_mean": self.activation_mean, "activation_std": self.activation_std,
                "saturated_share": self.saturated_share,
                "backprop_std": self.backprop_std, "backprop_ratio": self.backprop_ratio,
                "weight_gradient_variance": self.weight_gradient_variance,
                "weight_gradient_ratio": self.weight_gradient_ratio,
                "val_accuracy": self.val_accuracy}


def analyse_saturation_run(run) -> SaturationRun | str:
    """C7's measurements of one `runs.Run`, or why it has none.

    Returns:
        A `SaturationRun`, or a note naming what was not logged.
    """
    train = run.events.train
    depth = run.config.depth
    layers = [activation_name(index) for index in range(1, depth + 1)]
    activations = [train.histograms.get(tags.tag(tags.ACTIVATIONS, layer)) for layer in layers]
    backprop = [train.histograms.get(tags.tag(tags.BACKPROP_GRADIENTS, layer)) for layer in layers]
    weight_gradients = [
        train.histograms.get(tags.tag(tags.GRADIENTS, f"{dense_name(index)}/kernel"))
        for index in range(1, depth + 1)]
    if any(item is None for item in activations + backprop):
        return "no activation histograms (ActivationLogger)"
    if any(item is None for item in weight_gradients):
        return "no gradient histograms (GradientLogger)"
    steps = [int(step) for step in activations[0].steps]
    moments = [[events.summarize_histogram(buckets) for buckets in item.buckets]
               for item in activations]
    at_start = [events.summarize_histogram(item.buckets[0]) for item in backprop]
    weights_at_start = [events.summarize_histogram(item.buckets[0]) for item in weight_gradients]
    history = run.load_history().get("val_accuracy") or [None]
    return SaturationRun(
        run=run.name, dataset=run.config.dataset, activation=run.config.activation,
        initializer=run.config.initializer,
        depth=depth, width=run.config.width, steps=steps,
        activation_mean=[[stats.mean for stats in layer] for layer in moments],
        activation_std=[[stats.std for stats in layer] for layer in moments],
        saturated_share=[[saturated(buckets, run.config.activation) for buckets in item.buckets]
                         for item in activations],
        backprop_std=[stats.std for stats in at_start],
        weight_gradient_variance=[stats.std ** 2 for stats in weights_at_start],
        val_accuracy=history[-1])


def saturated(buckets, activation: str) -> float:
    """Share of a histogram's activations within 10% of the range's ends (`SATURATION_LEVEL`).

    Each bucket's count sits at its centre, as in `events.summarize_histogram`.

    Example:

    >>> saturated([[-1.0, -0.9, 1], [-0.1, 0.1, 2], [0.9, 1.0, 1]], "tanh")
    0.5
    """
    buckets = np.asarray(buckets, np.float64).reshape(-1, 3)
    centres = (buckets[:, 0] + buckets[:, 1]) / 2
    if activation == "sigmoid":
        centres = 2 * centres - 1  # (0, 1) onto (−1, 1)
    total = buckets[:, 2].sum()
    if total <= 0:
        return float("nan")
    return float(buckets[np.abs(centres) >= SATURATION_LEVEL, 2].sum() / total)


def initial_layer_means(run: SaturationRun) -> np.ndarray:
    """Each hidden layer's mean activation at the first log."""
    return np.array([layer[0] for layer in run.activation_mean])
