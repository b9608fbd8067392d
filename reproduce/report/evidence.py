"""What the claims are judged on: verdicts, the claim result, and the typed evidence.

Each claim module (`c1_loss_drop` ... `c5_linear_data`) turns evidence into a
`Claim`; the writer shows it. The per-run evidence of the linear networks
(C3 and C4 share it) and the accuracy table (C5) are records here, each with
`to_json()` giving the exact dict written to `report.json`.
"""

from __future__ import annotations

import dataclasses

from reproduce.config import DATASETS, REGRESSION_DATASETS, TWO_D_DATASETS

SUPPORTED = "supported"
PARTIAL = "partially supported"
REFUTED = "refuted"
INSUFFICIENT = "insufficient data"
VERDICTS = (SUPPORTED, PARTIAL, REFUTED, INSUFFICIENT)

LINEAR = "linear"  # both the identity activation and the linearly separable dataset
LINEAR_SET = "linear"
NONLINEAR_SETS = tuple(name for name in TWO_D_DATASETS if name != LINEAR_SET)
# The classification sets of real data (C5); regression sets (`saxe`) are C6's, not C5's.
REAL_SETS = tuple(name for name in DATASETS
                  if name not in TWO_D_DATASETS + REGRESSION_DATASETS)
LOGISTIC_REGRESSION = "logistic_regression"


@dataclasses.dataclass
class Claim:
    """One claim's figures, rule and verdict, and how to show them."""

    id: str
    claim: str  # what the article says
    verdict: str
    rule: str
    evidence: dict  # JSON-ready
    headline: str  # the key figure, one line for the summary table
    conclusion: str
    tables: list[list[list]] = dataclasses.field(default_factory=list)  # header row first

    def to_json(self) -> dict:
        return {"id": self.id, "claim": self.claim, "verdict": self.verdict,
                "evidence": self.evidence, "rule": self.rule}


def _without(values: dict, *optional: str) -> dict:
    """`values` without the `optional` keys whose value is None."""
    return {key: value for key, value in values.items()
            if not (key in optional and value is None)}


@dataclasses.dataclass(frozen=True)
class GradientDependence:
    """How dLoss/dW1 of one network state changes with the batch, input scale and labels."""

    batches: int  # disjoint training batches compared
    batch_size: int
    batch_cosine_mean: float  # mean pairwise cosine of the batch gradients
    batch_cosine_min: float
    batch_norm_spread: float  # std / mean of their norms
    probe_gradient_norm: float
    inputs_doubled_change: float  # ||g' - g|| / ||g|| with the probe inputs doubled
    inputs_doubled_norm_ratio: float
    labels_permuted_change: float  # ... with the probe labels permuted
    labels_permuted_norm_ratio: float
    formula_max_error: float  # x^T delta (W2...W_out)^T against GradientTape, relative
    one_pass_max_error: float  # the one-pass batch gradients against GradientTape

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class TrainingFigures:
    """From a run's event files and history: its first layer's gradient and loss over training.

    A group of fields is None when the run did not log what it needs.
    """

    val_accuracy: float | None  # the last epoch's
    gradient_norm_first: float | None = None  # ||dL/dW1|| on the probe at the first log
    gradient_norm_last: float | None = None
    gradient_norm_ratio: float | None = None
    gradient_norm_steps: list[int] | None = None  # steps of the first and last log
    gradient_std_first: float | None = None  # std of the dL/dW1 histogram at the first log
    gradient_std_last: float | None = None
    loss_relative_decrease: float | None = None  # of the batch loss, as C1 measures it

    def to_json(self) -> dict:
        values = dataclasses.asdict(self)
        values["val_accuracy"] = values.pop("val_accuracy")  # written last
        return _without(values, *values.keys() - {"val_accuracy"})


@dataclasses.dataclass(frozen=True)
class NormChecks:
    """Recomputed probe gradient norms of dense_1/kernel against the logged ones."""

    initial_reconstructed: bool  # the step-0 weights loaded and matched the logged norm
    step0_gradient_norm_logged: float | None
    step0_gradient_norm_recomputed: float | None
    last_gradient_norm_logged: float | None
    last_gradient_norm_recomputed: float

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Collapse:
    """C4's figures: a linear network's collapsed affine map against the network itself."""

    max_abs_logit_difference: float  # on the validation split
    logit_scale: float  # largest |network logit|
    relative_logit_difference: float
    rank: int  # of the collapsed W
    full_rank: int  # min(inputs, outputs)
    shape: list[int]
    collapsed_accuracy: float
    logistic_regression_accuracy: float | None  # on the same split
    network_accuracy: float | None  # the run's last validation accuracy

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class LinearRun:
    """Everything measured on one linear-activation run (C3 and C4)."""

    run: str  # run name
    dataset: str
    training: TrainingFigures
    note: str | None = None  # why the model was not measured
    final: GradientDependence | None = None  # on the saved final model
    checks: NormChecks | None = None
    initial: GradientDependence | None = None  # on the step-0 weights, when they check out
    collapse: Collapse | None = None

    @property
    def measured(self) -> bool:
        return self.final is not None

    def state(self, name: str) -> GradientDependence | None:
        """`initial` or `final`."""
        return getattr(self, name)

    def to_json(self) -> dict:
        values = {"run": self.run, "dataset": self.dataset,
                  "training": self.training.to_json(), "note": self.note}
        for name in ("final", "checks", "initial", "collapse"):
            part = getattr(self, name)
            values[name] = part.to_json() if part is not None else None
        return _without(values, "note", "final", "checks", "initial", "collapse")


@dataclasses.dataclass(frozen=True)
class Accuracy:
    """Validation accuracy of one model on one dataset over its seeds."""

    dataset: str
    model: str  # an activation, or LOGISTIC_REGRESSION
    mean: float
    std: float
    n: int
    seeds: list[int]
    values: list[float]  # one per seed, in seed order

    def to_json(self) -> dict:
        return dataclasses.asdict(self)
