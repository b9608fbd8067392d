"""C1: "Loss drops really fast at first, then stabilises."

Measured per configuration (mean over seeds) on the logged `batch_loss`: the
share of the total decrease reached in the first 10% of steps and the share
still to come in the last 50% (`measures.measure_loss_drop`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from callbacks import tags
from reproduce import figures
from reproduce.report.context import group_runs
from reproduce.report.evidence import INSUFFICIENT, PARTIAL, REFUTED, SUPPORTED, Claim
from reproduce.report.measures import (
    EARLY_FRACTION, FINAL_FRACTION, LATE_FRACTION, LEVEL_HALF_WINDOW, MIN_RELATIVE_DECREASE,
    SLOPE_RATIO_CAP, LossDrop, measure_loss_drop)
from reproduce.report.text import fmt, mean_std

ID = "C1"
STATEMENT = "Loss drops really fast at first, then stabilises."
MIN_STEPS = 20  # fewer steps leave no "first 10%" to speak of
EARLY_SHARE_MIN = 0.5  # at least half the total decrease within the first 10% of steps
LATE_SHARE_MAX = 0.2  # at most a fifth of it within the last half
RULE = (f"Per configuration (mean over seeds) from `{tags.BATCH_LOSS}`: the share of the "
        f"total decrease (first batch's loss minus the mean of the last "
        f"{FINAL_FRACTION:.0%} of steps) reached after the first {EARLY_FRACTION:.0%} of "
        f"steps (the loss there averaged over ±{LEVEL_HALF_WINDOW:.0%} of the steps), and "
        f"the share still to come in the last {LATE_FRACTION:.0%}. A configuration holds "
        f"when its loss falls by ≥ {MIN_RELATIVE_DECREASE:.0%}, early share ≥ "
        f"{EARLY_SHARE_MIN} and late share ≤ {LATE_SHARE_MAX}. Supported when every "
        f"configuration with ≥ {MIN_STEPS} steps holds; partially supported when some do; "
        f"refuted when none does.")


def holds(drop: LossDrop) -> bool:
    """Whether one curve drops fast at first and then stabilises."""
    return (drop.relative_decrease >= MIN_RELATIVE_DECREASE
            and drop.early_share >= EARLY_SHARE_MIN and drop.late_share <= LATE_SHARE_MAX)


def judge(judged: list[dict]) -> str:
    """The verdict over the configurations with enough steps (their evidence rows)."""
    if not judged:
        return INSUFFICIENT
    failing = sum(not row["holds"] for row in judged)
    if not failing:
        return SUPPORTED
    return PARTIAL if failing < len(judged) else REFUTED


def build(context) -> Claim:
    """Measures C1 on the usable runs of `context` (a `report.context.Context`)."""
    groups = _group_losses(context)
    rows, evidence_rows = [], []
    for group, drops in groups.items():
        mean = LossDrop(**{field.name: float(np.mean([getattr(drop, field.name) for drop in drops]))
                           for field in dataclasses.fields(LossDrop)})
        enough = min(drop.steps for drop in drops) >= MIN_STEPS
        evidence_rows.append({
            "configuration": group, "seeds": len(drops), "steps": int(mean.steps),
            "initial": mean.initial, "early_level": mean.early_level,
            "final_level": mean.final_level, "relative_decrease": mean.relative_decrease,
            "early_share": mean.early_share,
            "early_share_std": float(np.std([drop.early_share for drop in drops])),
            "late_share": mean.late_share, "slope_ratio": mean.slope_ratio,
            "enough_steps": enough, "holds": enough and holds(mean),
        })
        figure = figures.existing(context.experiment_dir, figures.loss_drop_path(group))
        dropped = mean.relative_decrease >= MIN_RELATIVE_DECREASE
        rows.append([group, len(drops), int(mean.steps), mean.initial, mean.final_level,
                     mean.relative_decrease,
                     mean_std([d.early_share for d in drops]) if dropped else "–",
                     mean.late_share if dropped else "–",
                     _format_ratio(mean.slope_ratio) if dropped else "–",
                     _holds_cell(evidence_rows[-1]["holds"], enough, dropped),
                     f"[plot]({figure})" if figure else "–"])
    judged = [row for row in evidence_rows if row["enough_steps"]]
    evidence = {"configurations": evidence_rows}
    table = [["configuration", "seeds", "steps", "initial loss", "final level",
              "relative decrease",
              "share in first 10%", "share in last 50%", "slope ratio early/late", "holds",
              "figure"]] + rows
    if all(row[-1] == "–" for row in rows):
        table = [row[:-1] for row in table]  # no loss-drop figures drawn yet
    verdict = judge(judged)
    if verdict == INSUFFICIENT:
        return Claim(ID, STATEMENT, INSUFFICIENT, RULE, evidence,
                     f"no configuration with ≥ {MIN_STEPS} logged steps of `{tags.BATCH_LOSS}`",
                     f"No run logged `{tags.BATCH_LOSS}` over at least {MIN_STEPS} steps, "
                     "so there is no early phase to measure.", [table])
    median_early = float(np.median([row["early_share"] for row in judged]))
    median_late = float(np.median([row["late_share"] for row in judged]))
    failing = [row for row in judged if not row["holds"]]
    evidence.update(median_early_share=median_early, median_late_share=median_late,
                    configurations_judged=len(judged),
                    configurations_holding=len(judged) - len(failing),
                    failing=[row["configuration"] for row in failing])
    headline = (f"median share of the decrease in the first 10% of steps {fmt(median_early)}, "
                f"in the last 50% {fmt(median_late)}; {len(judged) - len(failing)}/"
                f"{len(judged)} configurations hold")
    return Claim(ID, STATEMENT, verdict, RULE, evidence, headline,
                 _conclusion(judged, failing, median_early, median_late), [table])


def _group_losses(context) -> dict[str, list[LossDrop]]:
    selected = [run for run in context.usable if context.batch_losses(run) is not None]
    return {group: [measure_loss_drop(context.batch_losses(run)) for run in members]
            for group, members in group_runs(selected).items()}


def _conclusion(judged, failing, median_early, median_late) -> str:
    if not failing:
        return ("Every configuration behaves as the article says: most of the loss "
                f"decrease (median {fmt(median_early)}) happens in the first 10% of the "
                f"steps and little of it (median {fmt(median_late)}) in the second half.")
    reasons = "; ".join(f"`{row['configuration']}` ({_reason(row)})" for row in failing)
    conclusion = (f"The fast-then-flat shape holds for {len(judged) - len(failing)} of "
                  f"{len(judged)} configurations (median share of the decrease in the first "
                  f"10% of steps {fmt(median_early)}, in the last 50% "
                  f"{fmt(median_late)}), but not for: {reasons}.")
    if any(row["relative_decrease"] < MIN_RELATIVE_DECREASE for row in failing):
        conclusion += (" Where the network cannot fit the data at all, its loss stays at "
                       "the chance level (ln 2 ≈ 0.693 for two balanced classes) from the "
                       "first steps and has nothing to drop: the article's curve describes "
                       "a model that learns, not every training run.")
    return conclusion


def _reason(row: dict) -> str:
    if row["relative_decrease"] <= 0:
        return f"the loss did not fall: {fmt(row['initial'])} → {fmt(row['final_level'])}"
    if row["relative_decrease"] < MIN_RELATIVE_DECREASE:
        return (f"the loss fell by only {fmt(100 * row['relative_decrease'])}%: "
                f"{fmt(row['initial'])} → {fmt(row['final_level'])}")
    if row["early_share"] < EARLY_SHARE_MIN:
        return f"only {fmt(row['early_share'])} of the decrease in the first 10% of steps"
    return f"{fmt(row['late_share'])} of the decrease still in the last 50% of steps"


def _format_ratio(ratio: float) -> str:
    return f"≥ {SLOPE_RATIO_CAP:g}" if ratio >= SLOPE_RATIO_CAP else fmt(ratio)


def _holds_cell(holding: bool, enough: bool, dropped: bool) -> str:
    if not enough:
        return f"too short (< {MIN_STEPS} steps)"
    if not dropped:
        return "no (no real drop)"
    return "yes" if holding else "no"
