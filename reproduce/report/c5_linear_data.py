"""C5: "It then does well only on linear data; forget good performance on non-linear data."

Validation accuracy (last epoch, mean over seeds) of the linear network
against logistic regression and the best non-linear activation, dataset by
dataset (`context.Context.accuracy`).
"""

from __future__ import annotations

import dataclasses
import math

from reproduce.config import ACTIVATIONS
from reproduce.report.evidence import (
    INSUFFICIENT, LINEAR, LINEAR_SET, LOGISTIC_REGRESSION, NONLINEAR_SETS, PARTIAL, REAL_SETS,
    REFUTED, SUPPORTED, Accuracy, Claim)
from reproduce.report.text import fmt, names

ID = "C5"
STATEMENT = ("It then does well only on linear data; forget good performance on non-linear "
             "data.")
LOGREG_MARGIN = 0.02  # non-linear sets: linear network <= logistic regression + at least this
NOISE_STANDARD_ERRORS = 2  # ... or + this many standard errors of the seed means' difference
NONLINEAR_GAP = 0.05  # ... and <= best non-linear activation - this
LINEAR_SET_MARGIN = 0.02  # `linear`: linear network >= best non-linear activation - this
COMPETITIVE_GAP = 0.05  # real sets: a linear model within this of the best is competitive
RULE = (f"Validation accuracy (last epoch, mean over seeds). On each non-linear generated "
        f"set ({', '.join(NONLINEAR_SETS)}) the claim holds when the linear network is no "
        f"better than logistic regression + a margin (the larger of {LOGREG_MARGIN} and "
        f"{NOISE_STANDARD_ERRORS} standard errors of the difference of the two seed means, "
        f"since near chance level seed noise exceeds a fixed margin) and at least "
        f"{NONLINEAR_GAP} below the best non-linear activation; on `{LINEAR_SET}` when the "
        f"linear network is within {LINEAR_SET_MARGIN} of the best non-linear activation. "
        f"On real sets ({', '.join(REAL_SETS)}) a linear model (the linear network or logistic "
        f"regression) within {COMPETITIVE_GAP} of the best non-linear activation is "
        f"competitive. Supported when every generated-set check holds and no real set is "
        f"competitive; partially supported when some checks hold or a real set is "
        f"competitive; refuted when no check holds. Insufficient data without linear and "
        f"non-linear activations, or without `{LINEAR_SET}` and a non-linear generated set.")


@dataclasses.dataclass
class DatasetCheck:
    """C5's check on one dataset."""

    linear_network: float | None  # mean validation accuracy
    logistic_regression: float | None
    best_nonlinear: float | None
    best_nonlinear_activation: str | None
    kind: str = "incomplete"  # "non-linear", "linear", "real", or "incomplete"
    margin: float | None = None  # non-linear sets: the allowance over logistic regression
    holds: bool | None = None  # None for real sets and incomplete checks
    competitive: bool | None = None  # real sets: a linear model close to the best

    def to_json(self) -> dict:
        values = dataclasses.asdict(self)
        return {key: value for key, value in values.items()
                if value is not None or key not in ("margin", "competitive")}


def dataset_checks(accuracy: list[Accuracy]) -> dict[str, DatasetCheck]:
    """C5's check on each dataset: the linear network against logistic regression and the best."""
    by_dataset: dict[str, dict[str, float]] = {}
    variance_of_mean: dict[tuple[str, str], float] = {}
    for row in accuracy:
        by_dataset.setdefault(row.dataset, {})[row.model] = row.mean
        variance_of_mean[row.dataset, row.model] = row.std ** 2 / row.n
    checks = {}
    for dataset, means in by_dataset.items():
        nonlinear = {model: mean for model, mean in means.items()
                     if model not in (LINEAR, LOGISTIC_REGRESSION)}
        linear, logistic = means.get(LINEAR), means.get(LOGISTIC_REGRESSION)
        best = max(nonlinear.values()) if nonlinear else None
        check = DatasetCheck(linear, logistic, best,
                             max(nonlinear, key=nonlinear.get) if nonlinear else None)
        if linear is None or best is None:
            pass  # incomplete
        elif dataset in NONLINEAR_SETS:
            # Near chance level the seed noise exceeds any fixed margin.
            check.margin = max(LOGREG_MARGIN, NOISE_STANDARD_ERRORS * math.sqrt(
                variance_of_mean.get((dataset, LINEAR), 0.0)
                + variance_of_mean.get((dataset, LOGISTIC_REGRESSION), 0.0)))
            check.kind, check.holds = "non-linear", bool(
                logistic is not None and linear <= logistic + check.margin
                and linear <= best - NONLINEAR_GAP)
        elif dataset == LINEAR_SET:
            check.kind, check.holds = "linear", bool(linear >= best - LINEAR_SET_MARGIN)
        else:
            linear_best = max(value for value in (linear, logistic) if value is not None)
            check.kind = "real"
            check.competitive = bool(linear_best >= best - COMPETITIVE_GAP)
        checks[dataset] = check
    return checks


def missing_kinds(activations: set[str], sets: set[str]) -> list[str]:
    """What the experiment lacks for C5 to compare anything; empty when nothing."""
    needed = []
    if LINEAR not in activations:
        needed.append("the linear activation")
    if not activations - {LINEAR}:
        needed.append("a non-linear activation")
    if LINEAR_SET not in sets:
        needed.append(f"the `{LINEAR_SET}` dataset")
    if not sets & set(NONLINEAR_SETS):
        needed.append(f"a non-linear generated dataset ({', '.join(NONLINEAR_SETS)})")
    return needed


def judge(holding: list[str], failing: list[str], competitive: list[str]) -> str:
    """The verdict from the datasets whose check holds or fails, and the competitive real sets."""
    if not holding:
        return REFUTED
    if failing or competitive:
        return PARTIAL
    return SUPPORTED


def build(context) -> Claim:
    """Measures C5 on the accuracy table of `context` (a `report.context.Context`)."""
    accuracy = context.accuracy
    checks = dataset_checks(accuracy)
    evidence = {"datasets": {name: check.to_json() for name, check in checks.items()}}
    tables = [_accuracy_markdown(accuracy), _checks_markdown(checks)]
    needed = missing_kinds({run.config.activation for run in context.usable},
                           {run.config.dataset for run in context.usable})
    evidence["missing_runs"] = context.missing
    if needed:
        evidence["missing"] = needed
        return Claim(ID, STATEMENT, INSUFFICIENT, RULE, evidence, "missing: " + ", ".join(needed),
                     f"The claim compares activations across datasets; runs with "
                     f"{', '.join(needed)} are missing from this experiment.", tables)
    judged = {name: check for name, check in checks.items() if check.holds is not None}
    competitive = [name for name, check in checks.items() if check.competitive]
    holding = [name for name, check in judged.items() if check.holds]
    failing = [name for name in judged if name not in holding]
    conclusion = _conclusion(checks, holding, failing, competitive)
    if context.missing:
        conclusion += (f" Runs missing from the grid: {len(context.missing)} (listed in the "
                       f"introduction).")
    headline = (f"holds on {len(holding)}/{len(judged)} generated sets"
                + (f"; linear model competitive on {names(competitive)}" if competitive else ""))
    evidence.update(holding=holding, failing=failing, real_competitive=competitive)
    return Claim(ID, STATEMENT, judge(holding, failing, competitive), RULE, evidence, headline,
                 conclusion, tables)


def _conclusion(checks: dict[str, DatasetCheck], holding: list, failing: list,
                competitive: list) -> str:
    def versus(name: str) -> str:
        check = checks[name]
        return f"`{name}` {fmt(check.linear_network)} vs {fmt(check.logistic_regression)}"

    sentences = []
    nonlinear = [name for name in holding if checks[name].kind == "non-linear"]
    if nonlinear:
        gaps = [checks[name].best_nonlinear - checks[name].linear_network for name in nonlinear]
        sentences.append(
            f"On the non-linear generated sets the linear network does no better than logistic "
            f"regression ({', '.join(versus(name) for name in nonlinear)}) and stays "
            f"{fmt(min(gaps))} to {fmt(max(gaps))} below the best non-linear network.")
    if LINEAR_SET in holding:
        check = checks[LINEAR_SET]
        sentences.append(f"On `{LINEAR_SET}` it reaches {fmt(check.linear_network)}, like "
                         f"the best non-linear network ({fmt(check.best_nonlinear)}).")
    if failing:
        sentences.append(f"The check fails on {names(failing)} "
                         f"({', '.join(versus(name) for name in failing)}; best non-linear "
                         + ", ".join(fmt(checks[name].best_nonlinear) for name in failing)
                         + ").")
    for name in competitive:
        check = checks[name]
        sentences.append(
            f"But on the real set `{name}` a linear model is competitive: logistic regression "
            f"{fmt(check.logistic_regression)} and the linear network "
            f"{fmt(check.linear_network)} against {fmt(check.best_nonlinear)} for the "
            f"best non-linear network ({check.best_nonlinear_activation}). \"Forget good "
            f"performance on non-linear data\" overstates it: what matters is how close the "
            f"classes are to linearly separable, and here they nearly are.")
    return " ".join(sentences)


def _accuracy_markdown(accuracy: list[Accuracy]) -> list[list]:
    models_seen = list(dict.fromkeys(row.model for row in accuracy))
    models_seen.sort(key=(*ACTIVATIONS, LOGISTIC_REGRESSION).index)
    cells = {(row.dataset, row.model): row for row in accuracy}
    datasets_seen = list(dict.fromkeys(row.dataset for row in accuracy))
    table = [["dataset", *[_model_label(model) for model in models_seen]]]
    for dataset in datasets_seen:
        table.append([dataset] + [
            f"{fmt(cells[dataset, model].mean)} ± {fmt(cells[dataset, model].std, 2)} "
            f"({cells[dataset, model].n})" if (dataset, model) in cells else "–"
            for model in models_seen])
    return table


def _checks_markdown(checks: dict[str, DatasetCheck]) -> list[list]:
    table = [["dataset", "kind", "linear network", "logistic regression (+ margin)",
              "best non-linear", "result"]]
    for name, check in checks.items():
        if check.kind == "real":
            result = "linear model competitive" if check.competitive else "non-linear wins"
        else:
            result = {True: "holds", False: "does not hold", None: "incomplete"}[check.holds]
        best = (f"{fmt(check.best_nonlinear)} ({check.best_nonlinear_activation})"
                if check.best_nonlinear is not None else "–")
        logistic = check.logistic_regression
        if check.margin is not None and logistic is not None:
            logistic = f"{fmt(logistic)} (+{fmt(check.margin, 2)})"
        table.append([name, check.kind, check.linear_network, logistic, best, result])
    return table


def _model_label(model: str) -> str:
    return "logistic regression" if model == LOGISTIC_REGRESSION else f"{model} network"
