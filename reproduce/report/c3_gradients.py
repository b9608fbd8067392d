"""C3: "Gradients then no longer depend on the inputs (and so on the errors), so
backpropagation cannot find how to change the weights."

Measured on each linear-activation run's saved final model and on its step-0
weights (`linear_runs`): dL/dW₁ on disjoint batches, with the inputs doubled,
with the labels permuted; and whether the linear network learns the `linear`
dataset at all.
"""

from __future__ import annotations

from reproduce.report.evidence import (
    INSUFFICIENT, LINEAR_SET, PARTIAL, REFUTED, SUPPORTED, Claim, LinearRun)
from reproduce.report.measures import mean_or_none
from reproduce.report.text import fmt

ID = "C3"
STATEMENT = ("Gradients then no longer depend on the inputs (and so on the errors), so "
             "backpropagation cannot find how to change the weights.")
# How the gradients are measured (`linear_runs.gradient_dependence`).
GRADIENT_BATCHES = 8  # disjoint training batches compared with each other
GRADIENT_BATCH_SIZE = 64
INPUT_SCALE = 2.0
RECONSTRUCTION_RTOL = 1e-4  # initial state vs the logged step-0 gradient norm
# How they are judged.
COSINE_MAX = 0.9  # batch gradients this aligned or less count as different
NORM_SPREAD_MIN = 0.1  # or their norms' std/mean at least this
CHANGE_MIN = 0.1  # ||g' - g|| / ||g|| when inputs are doubled or labels permuted
LOSS_DROP_MIN = 0.5  # on `linear`, the linear network's loss must fall by more than half
LINEAR_ACCURACY_MIN = 0.9  # and its validation accuracy exceed this (chance is 0.5)
CHANCE_ACCURACY = 0.5
RULE = (f"For each linear-activation run, dL/dW₁ (the first layer's kernel) is computed "
        f"with GradientTape on the saved final model and on the initial model (the step-0 "
        f"weights saved in the run folder, used only if its probe gradient norm matches the "
        f"one logged at step 0 to {RECONSTRUCTION_RTOL:g}): on {GRADIENT_BATCHES} disjoint "
        f"training batches, and on the probe batch with inputs ×{INPUT_SCALE:g} or labels "
        f"permuted. A run's gradients depend on inputs and errors when, on the final model, "
        f"the batch gradients' mean pairwise cosine is < {COSINE_MAX} or their norms' "
        f"std/mean > {NORM_SPREAD_MIN}, and doubling the inputs and permuting the labels "
        f"each change the gradient by > {CHANGE_MIN:.0%} (‖g′ − g‖/‖g‖); and, on the "
        f"initial model, doubling the inputs changes it by > {CHANGE_MIN:.0%}. Refuted when "
        f"every linear run's gradients depend on inputs and errors AND, on the "
        f"`{LINEAR_SET}` dataset, every linear network's batch loss falls by "
        f"> {LOSS_DROP_MIN:.0%} with validation accuracy > {LINEAR_ACCURACY_MIN} (if "
        f"backpropagation could not work, the loss would stay put and the accuracy at "
        f"chance, {CHANCE_ACCURACY}); supported when no run shows either; partially "
        f"supported otherwise. Insufficient data without linear-activation runs on "
        f"`{LINEAR_SET}`.")
MATH = ("Why: for y = W₂W₁x, ∂L/∂W₁ = W₂ᵀ δ xᵀ with δ = ∂L/∂y, the product of the "
        "error and the input; f′ = 1 only drops a factor from the chain rule, it "
        "removes neither the input nor the error.")


def depends_on_inputs(item: LinearRun) -> bool:
    """C3's rule for one run: its first layer's gradient depends on the inputs and the errors.

    On the final model: gradients of different batches differ, and doubling the
    inputs or permuting the labels changes the gradient. On the initial model
    only the doubled inputs are required to change it: there every batch
    estimates the same large full-data gradient, so batch gradients align, and
    where the labels are not linearly correlated with the inputs (xor, circles)
    permuting them barely moves that estimate.
    """
    final, initial = item.final, item.initial
    differ = final.batch_cosine_mean < COSINE_MAX or final.batch_norm_spread > NORM_SPREAD_MIN
    depends = (differ and final.inputs_doubled_change > CHANGE_MIN
               and final.labels_permuted_change > CHANGE_MIN)
    return depends and (initial is None or initial.inputs_doubled_change > CHANGE_MIN)


def learns(item: LinearRun) -> bool:
    """Whether the network learned: its loss fell by more than half, its accuracy is high."""
    return ((item.training.loss_relative_decrease or 0.0) > LOSS_DROP_MIN
            and (item.training.val_accuracy or 0.0) > LINEAR_ACCURACY_MIN)


def judge(dependent: list[bool], learned: list[bool]) -> str:
    """The verdict from each measured run's dependence and each `linear`-set run's learning."""
    if not dependent or not learned:
        return INSUFFICIENT
    if all(dependent) and all(learned):
        return REFUTED
    return SUPPORTED if not any(dependent) and not any(learned) else PARTIAL


def build(context) -> Claim:
    """Measures C3 on the linear runs of `context` (a `report.context.Context`)."""
    linear_runs = context.linear_runs
    measured = [item for item in linear_runs if item.measured]
    evidence = {"runs": [item.to_json() for item in linear_runs]}
    tables = _tables(linear_runs)
    if not measured:
        return Claim(ID, STATEMENT, INSUFFICIENT, RULE, evidence,
                     "no linear-activation run to measure",
                     "No completed linear-activation run with regenerable data was found. "
                     + MATH, tables)
    dependent = [depends_on_inputs(item) for item in measured]
    on_linear = [item for item in measured if item.dataset == LINEAR_SET]
    learned = [learns(item) for item in on_linear]
    evidence.update(_summary(measured, dependent, on_linear, learned))
    verdict = judge(dependent, learned)
    text = _findings(evidence, measured, dependent)
    if verdict == INSUFFICIENT:
        return Claim(
            ID, STATEMENT, INSUFFICIENT, RULE, evidence,
            f"gradients depend on the inputs in {sum(dependent)}/{len(measured)} linear runs; "
            f"no linear-activation run on `{LINEAR_SET}`",
            text + f"Whether backpropagation trains the linear network is judged on the "
            f"`{LINEAR_SET}` dataset, and its linear-activation runs are missing. " + MATH,
            tables)
    text += (
        f"On `{LINEAR_SET}`, {sum(learned)} of {len(on_linear)} linear networks learn: the "
        f"batch loss falls by {fmt(100 * evidence['linear_set_loss_decrease_mean'])}% on "
        f"average and validation accuracy reaches "
        f"{fmt(evidence['linear_set_val_accuracy_mean'])} (chance {CHANCE_ACCURACY}). ")
    if verdict == REFUTED:
        text += (MATH + " The article's reasoning is wrong: backpropagation works on a "
                 "linear network; what the network cannot do is represent a non-linear "
                 "function (C4, C5).")
    else:
        text += MATH
    headline = (f"final batch-gradient cosine {fmt(evidence['final_batch_cosine_mean'])}, "
                f"inputs ×2 change g by ≥ "
                f"{fmt(100 * evidence['final_inputs_doubled_change_min'])}%; on "
                f"`{LINEAR_SET}` the loss falls "
                f"{fmt(100 * evidence['linear_set_loss_decrease_mean'])}%, val accuracy "
                f"{fmt(evidence['linear_set_val_accuracy_mean'])}")
    return Claim(ID, STATEMENT, verdict, RULE, evidence, headline, text, tables)


def _summary(measured: list[LinearRun], dependent, on_linear: list[LinearRun], learned) -> dict:
    norm_ratios = [item.training.gradient_norm_ratio for item in measured
                   if item.training.gradient_norm_ratio is not None]
    return dict(
        runs_measured=len(measured), runs_with_input_dependent_gradients=int(sum(dependent)),
        initial_models_used=int(sum(item.initial is not None for item in measured)),
        final_batch_cosine_mean=_mean_of(measured, "final", "batch_cosine_mean"),
        final_batch_norm_spread_mean=_mean_of(measured, "final", "batch_norm_spread"),
        final_inputs_doubled_change_min=_min_of(measured, "final", "inputs_doubled_change"),
        final_labels_permuted_change_min=_min_of(measured, "final", "labels_permuted_change"),
        initial_batch_cosine_mean=_mean_of(measured, "initial", "batch_cosine_mean"),
        initial_inputs_doubled_change_min=_min_of(measured, "initial", "inputs_doubled_change"),
        formula_max_error=max(item.final.formula_max_error for item in measured),
        one_pass_max_error=max(item.state(state).one_pass_max_error for item in measured
                               for state in ("final", "initial") if item.state(state)),
        logged_norm_max_mismatch=_logged_norm_mismatch(measured),
        gradient_norm_ratio_range=[min(norm_ratios), max(norm_ratios)] if norm_ratios else None,
        linear_set_runs=len(on_linear), linear_set_runs_learning=int(sum(learned)),
        linear_set_loss_decrease_mean=mean_or_none(
            [item.training.loss_relative_decrease for item in on_linear]),
        linear_set_val_accuracy_mean=mean_or_none(
            [item.training.val_accuracy for item in on_linear]),
    )


def _findings(evidence: dict, measured: list[LinearRun], dependent) -> str:
    text = (
        f"In {sum(dependent)} of {len(measured)} linear runs the first layer's gradient "
        f"depends on the inputs and the errors. On the final models, gradients of different "
        f"batches have mean cosine {fmt(evidence['final_batch_cosine_mean'])} and norm "
        f"spread {fmt(evidence['final_batch_norm_spread_mean'])}; doubling the inputs changes "
        f"the gradient by at least {fmt(100 * evidence['final_inputs_doubled_change_min'])}% "
        f"and permuting the labels by at least "
        f"{fmt(100 * evidence['final_labels_permuted_change_min'])}% (near the optimum the "
        f"true-label gradient is small, so wrong labels make it many times larger). ")
    if evidence["initial_batch_cosine_mean"] is not None:
        text += (
            f"At the initial weights the batch gradients point the same way (mean cosine "
            f"{fmt(evidence['initial_batch_cosine_mean'])}) because every batch estimates the "
            f"same large full-data gradient, not because the inputs drop out: doubling them "
            f"still changes the gradient by at least "
            f"{fmt(100 * evidence['initial_inputs_doubled_change_min'])}%. ")
    ratio_range = evidence["gradient_norm_ratio_range"]
    if ratio_range:
        low, high = ratio_range
        factors = fmt(low) + (f" to {fmt(high)}" if high > low else "")
        text += (f"Over training the logged ‖∂L/∂W₁‖ on the probe changes by a factor of "
                 f"{factors} between the first and the last log. ")
    text += (f"The hand-computed xᵀ·δ·(W₂…W_out)ᵀ equals GradientTape's gradient through the "
             f"Keras model to {fmt(evidence['formula_max_error'])} (relative; the one-pass "
             f"batch gradients used above match it to {fmt(evidence['one_pass_max_error'])})")
    if evidence["logged_norm_max_mismatch"] is not None:
        text += (f", and the recomputed probe gradient norms match the logged ones to "
                 f"{fmt(evidence['logged_norm_max_mismatch'])}")
    text += ". "
    if evidence["initial_models_used"] < len(measured):
        text += (f"The initial model of {len(measured) - evidence['initial_models_used']} "
                 f"run(s) did not match the logged step 0, so only their final "
                 f"models were measured. ")
    return text


def _mean_of(items: list[LinearRun], state: str, key: str) -> float | None:
    return mean_or_none([getattr(item.state(state), key) for item in items if item.state(state)])


def _min_of(items: list[LinearRun], state: str, key: str) -> float | None:
    values = [getattr(item.state(state), key) for item in items if item.state(state)]
    return min(values) if values else None


def _logged_norm_mismatch(measured: list[LinearRun]) -> float | None:
    """Largest relative gap between recomputed and logged probe gradient norms."""
    gaps = []
    for item in measured:
        checks = item.checks
        pairs = [(checks.last_gradient_norm_logged, checks.last_gradient_norm_recomputed)]
        if checks.initial_reconstructed:
            pairs.insert(0, (checks.step0_gradient_norm_logged,
                             checks.step0_gradient_norm_recomputed))
        gaps += [abs(recomputed - logged) / logged for logged, recomputed in pairs
                 if logged and recomputed is not None]
    return max(gaps) if gaps else None


def _tables(linear_runs: list[LinearRun]) -> list[list[list]]:
    gradients = [["run", "state", "batch cosine (mean)", "batch norm spread",
                  "change, inputs ×2", "change, labels permuted", "‖g‖ ratio, labels permuted",
                  "xᵀδMᵀ vs tape"]]
    training = [["run", "‖∂L/∂W₁‖ first log", "last log", "ratio", "gradient std first",
                 "last", "loss decrease", "val accuracy"]]
    for item in linear_runs:
        for state in ("initial", "final"):
            figures = item.state(state)
            if figures:
                gradients.append([item.run, state, figures.batch_cosine_mean,
                                  figures.batch_norm_spread, figures.inputs_doubled_change,
                                  figures.labels_permuted_change,
                                  figures.labels_permuted_norm_ratio,
                                  figures.formula_max_error])
        t = item.training
        training.append([item.run, t.gradient_norm_first, t.gradient_norm_last,
                         t.gradient_norm_ratio, t.gradient_std_first, t.gradient_std_last,
                         t.loss_relative_decrease, t.val_accuracy])
    return [gradients, training]
