"""C4: "A deep network with linear activations is a linear model."

Each trained linear network is multiplied out into one affine map
(`networks.collapse_linear`) and compared with the network's own logits on the
validation split.
"""

from __future__ import annotations

from reproduce.report.evidence import INSUFFICIENT, REFUTED, SUPPORTED, Claim, LinearRun
from reproduce.report.networks import RANK_RTOL
from reproduce.report.text import fmt

ID = "C4"
STATEMENT = "A deep network with linear activations is a linear model."
LOGIT_RTOL = 1e-3  # max |collapsed - network logit| / max |network logit|
SAME_ACCURACY = 1e-6  # collapsed and network accuracy closer than this are the same
RULE = (f"Each trained linear network is collapsed into one affine map W = W₁W₂…W_out, "
        f"b = (…(b₁W₂ + b₂)W₃ …)W_out + b_out. Supported when, for every linear run, the "
        f"largest |collapsed − network logit| on the validation split is ≤ {LOGIT_RTOL:g} "
        f"of the largest |network logit|; refuted otherwise. Also reported: rank of W "
        f"(singular values > {RANK_RTOL:g} of the largest) vs min(inputs, outputs), and "
        f"the collapsed map's accuracy next to scikit-learn's LogisticRegression on the "
        f"same split.")


def judge(worst_relative_difference: float | None) -> str:
    """The verdict from the largest relative logit difference over the runs (None: no run)."""
    if worst_relative_difference is None:
        return INSUFFICIENT
    return SUPPORTED if worst_relative_difference <= LOGIT_RTOL else REFUTED


def build(context) -> Claim:
    """Measures C4 on the linear runs of `context` (a `report.context.Context`)."""
    measured = [item for item in context.linear_runs if item.collapse is not None]
    evidence = {"runs": [{"run": item.run, **item.collapse.to_json()} for item in measured]}
    table = [["run", "max |Δlogit|", "logit scale", "relative", "rank", "min(in, out)",
              "collapsed accuracy", "network accuracy", "logistic regression"]]
    for item in measured:
        c = item.collapse
        table.append([item.run, c.max_abs_logit_difference, c.logit_scale,
                      c.relative_logit_difference, c.rank, c.full_rank,
                      c.collapsed_accuracy, c.network_accuracy, c.logistic_regression_accuracy])
    if not measured:
        return Claim(ID, STATEMENT, INSUFFICIENT, RULE, evidence,
                     "no linear-activation run to collapse",
                     "No completed linear-activation run with regenerable data was found.",
                     [table])
    worst = max(item.collapse.relative_logit_difference for item in measured)
    full = sum(item.collapse.rank == item.collapse.full_rank for item in measured)
    gaps = [abs(item.collapse.collapsed_accuracy - item.collapse.logistic_regression_accuracy)
            for item in measured if item.collapse.logistic_regression_accuracy is not None]
    same = sum(_same_accuracy(item) for item in measured)
    evidence.update(worst_relative_logit_difference=worst, runs_full_rank=int(full),
                    runs_same_accuracy_as_network=int(same),
                    max_accuracy_gap_to_logistic_regression=max(gaps) if gaps else None)
    conclusion = (
        f"Each of the {len(measured)} linear network(s) is one affine map: its logits and the "
        f"collapsed map's differ by at most {fmt(worst)} of their scale (float32 rounding). "
        f"The collapsed map classifies the validation split exactly as the network did in "
        f"{same} of {len(measured)} runs (same accuracy as history.json's last "
        f"val_accuracy), and {full} of {len(measured)} products have the full rank "
        f"min(inputs, outputs): the depth adds no capacity, it re-parametrises a linear "
        f"classifier."
        + (f" The collapsed maps score within {fmt(max(gaps))} of logistic regression on the "
           f"same splits." if gaps and max(gaps) > 0 else "")
        + (" The collapsed maps score exactly as logistic regression on the same splits."
           if gaps and max(gaps) == 0 else ""))
    headline = f"max relative |Δlogit| {fmt(worst)}; {full}/{len(measured)} full rank"
    return Claim(ID, STATEMENT, judge(worst), RULE, evidence, headline, conclusion, [table])


def _same_accuracy(item: LinearRun) -> bool:
    collapse = item.collapse
    return (collapse.network_accuracy is not None
            and abs(collapse.collapsed_accuracy - collapse.network_accuracy) < SAME_ACCURACY)
