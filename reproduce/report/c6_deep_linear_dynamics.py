"""C6: "Deep linear networks learn mode by mode, after plateaus, in a time ∝ 1/s."

Beyond the article (Saxe, McClelland & Ganguli 2014). On the `saxe` task
(targets y = U S Vᵀ x of whitened inputs), `ModeStrengthLogger` logged each
mode's strength u_α(t) = u_αᵀ W(t) v_α at every step; `mode_dynamics`
measures half-learning times, the analytic fit of one hidden layer and the
plateaus of deeper networks.
"""

from __future__ import annotations

import numpy as np

from reproduce.report.evidence import INSUFFICIENT, PARTIAL, REFUTED, SUPPORTED, Claim
from reproduce.report.mode_dynamics import ModeRun
from reproduce.report.text import fmt, names

ID = "C6"
STATEMENT = ("A deep linear network learns its task mode by mode, each after a plateau, in a "
             "time inversely proportional to the mode's strength; deeper nets wait longer.")
SCALED_TIME_SPREAD = 0.25  # max |s·t_half − mean| / mean over the modes
HALF_TIME_ERROR = 0.10  # |t_half − analytic t_half| / t_half
MAX_DEVIATION = 0.2  # max over steps of |u − u_analytic| / s
RULE = (f"On full-batch SGD runs of the `saxe` task, t_half is the first step at which a mode's "
        f"strength u_α = u_αᵀWv_α reaches s_α/2. (a) Time ∝ 1/s: for the one-hidden-layer "
        f"linear net at the smallest initial scale, every mode reaches s/2 within the budget "
        f"and s·t_half is within ±{SCALED_TIME_SPREAD:.0%} of its mean across modes. "
        f"(b) The analytic curves u(t) = s/(1 + (s/u₀ − 1)e^(−2st/τ)), τ = P·N₃/(2η) steps "
        f"and u₀ = ‖W₁v + W₂ᵀu‖²/4 from the step-0 weights: for the same run, every mode's "
        f"t_half is within {HALF_TIME_ERROR:.0%} of the analytic one and the curves stay within "
        f"{MAX_DEVIATION:g}·s of it at every step. (c) Longer plateaus with depth: at each "
        f"initial scale, the linear nets' plateau (t_half of the strongest mode; beyond the "
        f"budget counts as longer than any measured one) grows strictly with depth, at a "
        f"scale where at least one depth leaves its plateau. Supported when (a), (b) and (c) "
        f"hold; refuted when none does; partially supported otherwise. tanh runs are "
        f"reported for comparison, outside the rule (for tanh, W is the product of the kernels: "
        f"the network's Jacobian at x = 0).")


def judge(time_inverse: bool | None, analytic: bool | None, depth: bool | None) -> str:
    """The verdict from parts (a), (b), (c); None: not measurable."""
    parts = [time_inverse, analytic, depth]
    if time_inverse is None or analytic is None:
        return INSUFFICIENT
    held = sum(bool(part) for part in parts)
    if held == len(parts):
        return SUPPORTED
    return REFUTED if held == 0 else PARTIAL


def scaled_time_spread(run: ModeRun) -> float | None:
    """max |s·t_half − mean| / mean over the modes; None when a mode is not half learned."""
    scaled = [mode.scaled_time for mode in run.modes]
    if any(value is None for value in scaled):
        return None
    mean = float(np.mean(scaled))
    return float(np.max(np.abs(np.asarray(scaled) - mean)) / mean)


def plateaus_grow(by_depth: dict[int, int | None]) -> bool:
    """Whether the plateau grows strictly with depth (None: beyond the budget, the longest)."""
    lengths = [by_depth[depth] for depth in sorted(by_depth)]
    infinite = float("inf")
    values = [infinite if length is None else length for length in lengths]
    return all(after > before or after == before == infinite
               for before, after in zip(values, values[1:]))


def build(context) -> Claim:
    """Measures C6 on the `saxe` runs of `context` (a `report.context.Context`)."""
    measured = {name: item for name, item in context.mode_runs.items()
                if isinstance(item, ModeRun)}
    notes = {name: item for name, item in context.mode_runs.items() if isinstance(item, str)}
    runs = sorted(measured.values(),
                  key=lambda item: (item.activation != "linear", item.activation,
                                    item.init_scale, item.depth, item.run))
    evidence = {"runs": [item.to_json() for item in runs], "not_measured": notes}
    tables = [_mode_table(runs), _plateau_table(runs)]
    linear = [item for item in runs if item.activation == "linear"]
    reference = [item for item in linear if item.depth == 1 and item.analytic]
    if reference:
        smallest = min(item.init_scale for item in reference)
        reference = [item for item in reference if item.init_scale == smallest]
    if not reference:
        return Claim(ID, STATEMENT, INSUFFICIENT, RULE, evidence,
                     "no one-hidden-layer linear `saxe` run with mode strengths",
                     "No completed one-hidden-layer linear run of the `saxe` task with "
                     "`mode_strength` scalars and step-0 weights was found"
                     + (f" ({_describe_notes(notes)})" if notes else "") + ".", tables)
    spreads = [scaled_time_spread(item) for item in reference]
    time_inverse = all(spread is not None and spread <= SCALED_TIME_SPREAD for spread in spreads)
    errors = [mode.half_time_error for item in reference for mode in item.modes]
    deviations = [mode.max_deviation for item in reference for mode in item.modes]
    analytic = (all(error is not None and error <= HALF_TIME_ERROR for error in errors)
                and all(value is not None and value <= MAX_DEVIATION for value in deviations))
    scales = _plateaus_by_scale(linear)
    depth_ok = None
    if any(len(by_depth) > 1 for by_depth in scales.values()):
        depth_ok = (all(plateaus_grow(by_depth) for by_depth in scales.values())
                    and any(len(by_depth) > 1 and any(length is not None
                                                      for length in by_depth.values())
                            for by_depth in scales.values()))
    verdict = judge(time_inverse, analytic, depth_ok)
    worst_error = max((error for error in errors if error is not None), default=None)
    worst_deviation = max((value for value in deviations if value is not None), default=None)
    evidence.update(
        reference_runs=[item.run for item in reference],
        scaled_time_spread=[spread for spread in spreads],
        time_inverse_to_strength=time_inverse,
        max_half_time_error=worst_error, max_deviation=worst_deviation,
        analytic_curves_close=analytic,
        plateaus_by_scale={f"{scale:g}": {str(depth): length for depth, length in by_depth.items()}
                           for scale, by_depth in scales.items()},
        plateaus_grow_with_depth=depth_ok)
    first = reference[0]
    headline = ("one hidden layer: s·t_half "
                + (f"within ±{spreads[0]:.0%} of its mean " if spreads[0] is not None else
                   "not measured for every mode ")
                + f"({'/'.join(fmt(mode.scaled_time) for mode in first.modes)}), τ = "
                  f"{fmt(first.tau)} steps; "
                f"plateau by depth " + "; ".join(
                    f"σ={scale:g}: " + ", ".join(_plateau_text(length, first.budget)
                                                 for _, length in sorted(by_depth.items()))
                    for scale, by_depth in scales.items()))
    return Claim(ID, STATEMENT, verdict, RULE, evidence, headline,
                 _conclusion(first, spreads[0], time_inverse, analytic, worst_error,
                             worst_deviation, scales, depth_ok, runs, notes), tables)


def _plateaus_by_scale(linear: list[ModeRun]) -> dict[float, dict[int, int | None]]:
    scales: dict[float, dict[int, int | None]] = {}
    for item in sorted(linear, key=lambda item: (item.init_scale, item.depth)):
        scales.setdefault(item.init_scale, {})[item.depth] = item.plateau
    return scales


def _plateau_text(length: int | None, budget: int) -> str:
    return f"> {budget}" if length is None else str(length)


def _mode_table(runs: list[ModeRun]) -> list[list]:
    """One row per run: each mode's t_half, then (one hidden layer) the analytic fit."""
    strengths = [mode.strength for mode in runs[0].modes] if runs else []
    rows = [["activation", "depth", "σ", "τ (steps)",
             *[f"t_half, s = {strength:g}" for strength in strengths], "s·t_half",
             "analytic t_half", "max |u − analytic| / s", "u at the end"]]
    for item in runs:
        rows.append([item.activation, item.depth, item.init_scale, item.tau,
                     *[_plateau_text(mode.half_time, item.budget) for mode in item.modes],
                     _joined(mode.scaled_time for mode in item.modes),
                     _joined(mode.analytic_half_time for mode in item.modes),
                     _joined(mode.max_deviation for mode in item.modes),
                     _joined(mode.final for mode in item.modes)])
    return rows


def _joined(values) -> str:
    values = list(values)
    return "–" if all(value is None for value in values) else " / ".join(
        fmt(value, 2 if isinstance(value, float) and abs(value) < 1 else 3) for value in values)


def _plateau_table(runs: list[ModeRun]) -> list[list]:
    rows = [["activation", "σ", "depth", "plateau (t_half of s = max)", "modes half learned",
             "budget (steps)"]]
    for item in runs:
        learned = sum(mode.half_time is not None for mode in item.modes)
        rows.append([item.activation, item.init_scale, item.depth,
                     _plateau_text(item.plateau, item.budget), f"{learned}/{len(item.modes)}",
                     item.budget])
    return rows


def _describe_notes(notes: dict[str, str]) -> str:
    return "; ".join(f"{name}: {note}" for name, note in notes.items())


def _conclusion(first: ModeRun, spread, time_inverse, analytic, worst_error, worst_deviation,
                scales, depth_ok, runs: list[ModeRun], notes) -> str:
    modes = first.modes
    text = (
        f"Keras's mean-squared error averages over the P = {first.examples} examples and "
        f"N₃ = {first.outputs} outputs, so a step of η = {fmt(first.learning_rate)} on it is a "
        f"step of 2η/(P·N₃) on the paper's ½Σ‖y − ŷ‖²: its time constant is τ = P·N₃/(2η) = "
        f"{fmt(first.tau)} optimizer steps. "
        f"With one hidden layer at σ = {first.init_scale:g}, the "
        f"modes s = {names(mode.strength for mode in modes)} were half learned at steps "
        f"{names(_plateau_text(mode.half_time, first.budget) for mode in modes)}: s·t_half = "
        f"{names(mode.scaled_time for mode in modes)}"
        + (f", within ±{spread:.0%} of their mean" if spread is not None else
           ", not every mode within the budget")
        + (" — learning time ∝ 1/s up to the logarithm ln(s/u₀) of the theory. " if time_inverse
           else f" — not within the ±{SCALED_TIME_SPREAD:.0%} the rule allows. ")
        + "Each curve stays on a plateau near 0, then rises in a sigmoidal transition, the "
          "strong modes first. ")
    if worst_error is not None and worst_deviation is not None:
        text += (f"The analytic curves with u₀ from the step-0 weights predict t_half within "
                 f"{worst_error:.0%} and follow the measured curves within "
                 f"{fmt(worst_deviation, 2)}·s at every step"
                 + (" (rule: close). " if analytic else " (rule: not close enough). ")
                 + f"The largest gap is at s = {fmt(_worst_mode(first).strength)}: the theory "
                   f"treats the modes as independent, while in gradient descent the weak ones "
                   f"are nudged as the strong ones move, and its steps are discrete. ")
    else:
        text += "The analytic curves could not be fitted to every mode (rule: not close). "
    text += _plateau_sentences(scales, depth_ok, first.budget)
    text += _tanh_sentences(runs, scales)
    if notes:
        text += f"Not measured: {_describe_notes(notes)}."
    return text.strip()


def _worst_mode(run: ModeRun):
    return max((mode for mode in run.modes if mode.max_deviation is not None),
               key=lambda mode: mode.max_deviation)


def _plateau_sentences(scales, depth_ok, budget: int) -> str:
    text = ""
    for scale, by_depth in scales.items():
        lengths = [_plateau_text(by_depth[depth], budget) for depth in sorted(by_depth)]
        text += (f"Plateau of the strongest mode at σ = {scale:g}, depths "
                 f"{names(sorted(by_depth))}: {', '.join(lengths)} steps. ")
    if depth_ok is None:
        return text + "Deeper nets were not measured at a common scale. "
    if not depth_ok:
        return text + "The plateaus do not grow strictly with depth, as the rule requires. "
    text += "Deeper nets wait longer at every initial scale measured"
    stuck = {scale: [depth for depth, length in sorted(by_depth.items()) if length is None]
             for scale, by_depth in scales.items()}
    stuck = {scale: depths for scale, depths in stuck.items() if depths}
    if stuck:
        text += "; still on their plateau when the budget of " + f"{budget} steps ended: " + (
            "; ".join(f"depth {names(depths)} at σ = {scale:g}" for scale, depths in stuck.items()))
    return text + (" (the end-to-end map starts as a product of more small factors, and grows "
                   "the more slowly the smaller it is). ")


def _tanh_sentences(runs: list[ModeRun], scales) -> str:
    """tanh beside the linear nets: outside the rule, how close its plateaus are."""
    tanh = [item for item in runs if item.activation == "tanh"]
    if not tanh:
        return ""
    text = "tanh at the same initialisations (outside the rule): " + "; ".join(
        f"σ = {item.init_scale:g}, one hidden layer, s·t_half = "
        f"{names(mode.scaled_time for mode in item.modes)}"
        for item in tanh if item.depth == 1) + ". "
    pairs = [(item.plateau, scales[item.init_scale][item.depth]) for item in tanh
             if item.init_scale in scales and item.depth in scales[item.init_scale]]
    measured = [(own, linear) for own, linear in pairs if own is not None and linear is not None]
    if measured:
        gap = max(abs(own - linear) / linear for own, linear in measured)
        same_stuck = all((own is None) == (linear is None) for own, linear in pairs)
        text += (f"Its plateaus are within {gap:.1%} of the linear nets' at the same depth and "
                 f"scale" + (", and it stays on the plateau where they do" if same_stuck else "")
                 + ": near 0 tanh is linear, and the plateau happens near 0. ")
    if any(mode.final > 1.05 * mode.strength for item in tanh for mode in item.modes):
        text += ("Once its weights grow tanh is no longer linear, and the product of its "
                 "kernels is only its Jacobian at x = 0: hence final strengths past s for tanh "
                 "in the table. ")
    return text
