"""C2: "With f(x) = x the derivative is 1 for every input."

Read back from the `activation_derivative/act_i` histograms that
`ActivationLogger` wrote (f′ by automatic differentiation of each layer's own
activation): the share of the mass exactly at 1.0.
"""

from __future__ import annotations

import numpy as np

from callbacks import tags
from reproduce.config import ACTIVATIONS
from reproduce.report.evidence import INSUFFICIENT, LINEAR, REFUTED, SUPPORTED, Claim
from reproduce.report.measures import DerivativeFigures, derivative_figures, mean_or_none
from reproduce.report.text import fmt

ID = "C2"
STATEMENT = "With f(x) = x the derivative is 1 for every input."
DERIVATIVE_ONE = 1.0
RULE = (f"From the logged `{tags.ACTIVATION_DERIVATIVE}/act_i` histograms (every layer, "
        f"every logged step): the share of the mass exactly at 1.0 (constant buckets with "
        f"left = right = 1.0). Supported when it is 1.0 in every histogram of every "
        f"linear run; refuted when any is below.")


def summarise(figures: list[DerivativeFigures]) -> dict:
    """One activation's figures over its runs."""
    return {
        "runs": len(figures), "histograms": sum(f.histograms for f in figures),
        "mass_at_one_min": min(f.mass_at_one_min for f in figures),
        "mass_at_one_mean": float(np.mean([f.mass_at_one_mean for f in figures])),
        "top_bucket_mean": float(np.mean([f.top_bucket_mean for f in figures])),
        "derivative_min": min(f.derivative_min for f in figures),
        "derivative_max": max(f.derivative_max for f in figures),
        "dead_fraction_mean": mean_or_none([f.dead_fraction_mean for f in figures]),
        "saturated_fraction_mean": mean_or_none([f.saturated_fraction_mean for f in figures]),
    }


def judge(linear: dict | None) -> str:
    """The verdict from the linear activation's summary (None: no such run)."""
    if linear is None:
        return INSUFFICIENT
    return SUPPORTED if linear["mass_at_one_min"] == 1.0 else REFUTED


def build(context) -> Claim:
    """Measures C2 on the usable runs of `context` (a `report.context.Context`)."""
    per_activation: dict[str, list[DerivativeFigures]] = {}
    for run in context.usable:
        figures = derivative_figures(run.events.train, DERIVATIVE_ONE)
        if figures is not None:
            per_activation.setdefault(run.config.activation, []).append(figures)
    evidence = {"activations": {}}
    rows = []
    for activation in sorted(per_activation, key=ACTIVATIONS.index):
        summary = summarise(per_activation[activation])
        evidence["activations"][activation] = summary
        rows.append([activation, *summary.values()])
    table = [["activation", "runs", "histograms", "mass exactly at 1 (min)",
              "mass exactly at 1 (mean)", "mass in the bucket ending at 1", "f′ min", "f′ max",
              "dead units", "saturated entries"]] + rows
    linear = evidence["activations"].get(LINEAR)
    verdict = judge(linear)
    if verdict == INSUFFICIENT:
        return Claim(ID, STATEMENT, INSUFFICIENT, RULE, evidence,
                     "no linear run with logged activation derivatives",
                     "No linear-activation run logged `activation_derivative` histograms "
                     "(ActivationLogger), so the derivative cannot be read back.", [table])
    headline = (f"linear: smallest share of the mass exactly at 1 is "
                f"{fmt(linear['mass_at_one_min'])} over {linear['histograms']} histograms")
    return Claim(ID, STATEMENT, verdict, RULE, evidence, headline,
                 _conclusion(evidence["activations"]), [table])


def _conclusion(activations: dict[str, dict]) -> str:
    linear, relu = activations[LINEAR], activations.get("relu")
    others = ", ".join(
        f"{name} f′ ∈ [{fmt(s['derivative_min'])}, {fmt(s['derivative_max'])}]"
        for name, s in activations.items() if name != LINEAR)
    return (
        f"In all {linear['histograms']} logged derivative histograms of the {linear['runs']} "
        f"linear run(s), the smallest share of the mass exactly at 1.0 is "
        f"{fmt(linear['mass_at_one_min'])}: f′(x) = 1 for every input, as the article says. "
        + (f"The non-linear activations spread their derivatives ({others}). " if others else "")
        + (f"ReLU's derivative is exactly 1 too wherever a unit is active: "
           f"{fmt(relu['top_bucket_mean'])} of its mass sits in the top bucket, which for ReLU "
           f"holds only exact ones, and ReLU networks train well. " if relu else "")
        + "The statement is true but harmless: a constant activation derivative does not make "
          "the gradients of the weights constant (C3).")
