"""The network every run trains, as its readers need to know it: layer names and loss.

`models.build_model` builds `dense_1, act_1, ..., dense_N, act_N, output`; the
analysis (report, plots) reads saved models by these names without importing
the model-building code.
"""

from __future__ import annotations

OUTPUT_NAME = "output"


def dense_name(index: int) -> str:
    """The `index`-th hidden Dense layer (from 1): its pre-activations."""
    return f"dense_{index}"


def activation_name(index: int) -> str:
    """The `index`-th hidden Activation layer (from 1)."""
    return f"act_{index}"


REGRESSION = 0  # `n_classes` of a regression set: a linear output and mean-squared error


def loss_name(n_classes: int) -> str:
    """The Keras loss of a network with `n_classes` classes (2: one sigmoid unit; 0: regression)."""
    if n_classes == REGRESSION:
        return "mean_squared_error"
    return "binary_crossentropy" if n_classes == 2 else "sparse_categorical_crossentropy"
