"""The report: every registered claim measured on an experiment, written as Markdown and JSON.

`CLAIMS` is the registry: one module per claim, each with `ID`, `STATEMENT`
and `build(context) -> Claim`, in the order the report shows them. Adding a
claim is adding its module and one line here. C1–C5 are the article's; C6 and
C7 go beyond it, each measured on an experiment of its own (`BEYOND`: the
experiment's name chooses its report).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

from reproduce import figures, jsonable, runs
from reproduce.report import (
    c1_loss_drop, c2_derivative, c3_gradients, c4_collapse, c5_linear_data,
    c6_deep_linear_dynamics, c7_sigmoid_saturation)
from reproduce.report.context import Context
from reproduce.report.evidence import Claim
from reproduce.report.text import markdown_table, names

REPORT_FILE = "REPORT.md"
REPORT_JSON = "report.json"

CLAIMS = (
    c1_loss_drop,
    c2_derivative,
    c3_gradients,
    c4_collapse,
    c5_linear_data,
    c6_deep_linear_dynamics,
    c7_sigmoid_saturation,
)
ARTICLE_CLAIMS = CLAIMS[:5]


@dataclasses.dataclass(frozen=True)
class BeyondReport:
    """The report of an experiment beyond the article: its title, source and claims."""

    title: str
    source: str  # the paper whose finding is measured
    claims: tuple  # claim modules


# Experiment name -> its report; any other experiment gets the article's claims.
BEYOND = {
    "saxe": BeyondReport(
        "Deep linear networks learn mode by mode, measured", "Saxe, McClelland & Ganguli, "
        "\"Exact solutions to the nonlinear dynamics of learning in deep linear neural "
        "networks\", ICLR 2014", (c6_deep_linear_dynamics,)),
    "glorot_bengio": BeyondReport(
        "Where sigmoids saturate and gradients fade, measured", "Glorot & Bengio, "
        "\"Understanding the difficulty of training deep feedforward neural networks\", "
        "AISTATS 2010", (c7_sigmoid_saturation,)),
}


def build_report(experiment_dir: str | Path, context: Context | None = None) -> dict:
    """Measures every claim on the runs under `experiment_dir`; returns the report as a dict.

    Args:
        experiment_dir: the experiment folder.
        context: its `Context`, when already loaded (the figures share it).

    Raises:
        RunNotFoundError: the folder is missing or holds no completed run.
    """
    context = context or Context.load(experiment_dir)
    beyond = beyond_report(context)
    if beyond is not None:
        return {"experiment": str(context.experiment_dir), "title": beyond.title,
                "source": beyond.source, "sweep": context.describe_sweep(),
                "claims": [claim.build(context) for claim in beyond.claims],
                "runs": [_run_entry(run, context) for run in context.all_runs]}
    claims = [claim.build(context) for claim in ARTICLE_CLAIMS]
    return {
        "experiment": str(context.experiment_dir),
        "sweep": context.describe_sweep(),
        "claims": claims,
        "accuracy": [row.to_json() for row in context.accuracy],
        "runs": [_run_entry(run, context) for run in context.all_runs],
        "missing_runs": context.missing,
    }


def beyond_report(context: Context) -> BeyondReport | None:
    """The report of the experiment beyond the article that `context` holds, if it is one.

    The experiment is named by its runs' configs (all runs of a folder share it).
    """
    names = {run.config.experiment for run in context.all_runs}
    return BEYOND.get(names.pop()) if len(names) == 1 else None


def is_beyond(experiment_dir: str | Path) -> bool:
    """Whether `experiment_dir` holds an experiment beyond the article (`BEYOND`).

    Raises:
        RunNotFoundError: the folder is missing or holds no completed run.
    """
    with warnings.catch_warnings():  # the command that reads the runs warns about them
        warnings.simplefilter("ignore")
        return beyond_report(Context.load(experiment_dir)) is not None


def _run_entry(run: runs.Run, context: Context) -> dict:
    diverged = run.status is runs.RunStatus.DIVERGED
    return {"name": run.name, "status": run.status.value, "diverged": diverged,
            "diverged_at_step": run.marker.diverged_at_step if diverged else None,
            "val_accuracy": context.val_accuracy(run) if run.finished else None}


def write_report(experiment_dir: Path, context: Context | None = None) -> tuple[Path, Path]:
    """Writes `REPORT.md` and `report.json` into `experiment_dir`.

    Args:
        experiment_dir: an experiment folder (e.g. `logs/article`) holding run folders.
        context: its `Context`, when already loaded.

    Returns:
        (path of REPORT.md, path of report.json).

    Raises:
        RunNotFoundError: the folder is missing or holds no completed run.

    Example:

    ```python
    markdown, data = write_report(Path("logs/article"))
    json.loads(data.read_text())["claims"][2]["verdict"]  # "refuted"
    ```
    """
    experiment_dir = Path(experiment_dir)
    report = build_report(experiment_dir, context)
    markdown_path = experiment_dir / REPORT_FILE
    json_path = experiment_dir / REPORT_JSON
    markdown_path.write_text(render_markdown(report, experiment_dir))
    payload = {**report, "claims": [claim.to_json() for claim in report["claims"]]}
    json_path.write_text(json.dumps(jsonable.finite(payload), indent=2, allow_nan=False) + "\n")
    return markdown_path, json_path


def render_markdown(report: dict, experiment_dir: Path) -> str:
    """The human-readable report."""
    if "title" in report:
        return _render_beyond(report, experiment_dir)
    sweep = report["sweep"]
    values = sweep["values"]
    claims: list[Claim] = report["claims"]
    lines = [
        "# Report: \"Why you shouldn't use a linear activation function\", measured",
        "",
        f"Experiment `{experiment_dir}`: {sweep['runs']} run folder(s), "
        f"{sweep[runs.RunStatus.COMPLETE.value]} complete, "
        f"{sweep[runs.RunStatus.DIVERGED.value]} diverged, "
        f"{sweep[runs.RunStatus.INCOMPLETE.value]} unfinished. MLPs with depth "
        f"{names(values['depth'])} and "
        f"width {names(values['width'])} ({names(values['initializer'])} initialisation, "
        f"{names(values['optimizer'])} at learning rate {names(values['learning_rate'])}, "
        f"batch size {names(values['batch_size'])}, {names(values['epochs'])} epochs) on "
        f"datasets {names(values['dataset'])} with hidden activations "
        f"{names(values['activation'])}, seeds {names(values['seed'])}.",
        "",
        "Everything below is read back from the run folders (event files, history.json, "
        "model.keras, probe.npz, data regenerated from config.json); nothing is retrained.",
        "",
    ]
    diverged = [run["name"] + (f" (at step {run['diverged_at_step']})"
                               if run["diverged_at_step"] is not None else "")
                for run in report["runs"] if run["diverged"]]
    unfinished = [run["name"] for run in report["runs"]
                  if run["status"] == runs.RunStatus.INCOMPLETE.value]
    if diverged:
        lines += [f"**Diverged runs, excluded from every statistic:** {names(diverged)}.", ""]
    if unfinished:
        lines += [f"**Unfinished runs (no marker), excluded:** {names(unfinished)}.", ""]
    if report["missing_runs"]:
        lines += [f"**Missing from the grid datasets × activations × seeds** "
                  f"({len(report['missing_runs'])}): {names(report['missing_runs'])}.", ""]
    lines += ["## Summary", ""]
    lines += markdown_table([["claim", "the article says", "verdict", "key figures"]] + [
        [claim.id, claim.claim, f"**{claim.verdict}**", claim.headline] for claim in claims])
    for claim in claims:
        lines += ["", f"## {claim.id}: {claim.claim}", "", f"**Verdict: {claim.verdict}**", "",
                  f"*Rule.* {claim.rule}", ""]
        for table in claim.tables:
            if len(table) > 1:
                lines += markdown_table(table) + [""]
        lines += [claim.conclusion]
    lines += ["", "## How to reproduce", "",
              "`make reproduce` trains the runs into `logs/`; `reproduce report "
              f"{experiment_dir}` writes this report again.", "", "## Figures", ""]
    lines += _figure_lines(experiment_dir, claims[0])
    return "\n".join(lines) + "\n"


def _figure_lines(experiment_dir: Path, c1: Claim) -> list[str]:
    listed = []
    overview = figures.existing(experiment_dir, figures.overview_path())
    if overview:
        listed.append(f"![overview]({overview})")
    for row in c1.evidence.get("configurations", []):
        path = figures.existing(experiment_dir, figures.loss_drop_path(row["configuration"]))
        if path:
            listed.append(f"- loss drop, `{row['configuration']}`: [{path}]({path})")
    if not listed:
        return [f"No figures yet in `{figures.FIGURES_DIR}/` (`reproduce plot` writes them)."]
    return [f"From `{figures.FIGURES_DIR}/`:", ""] + listed


def _render_beyond(report: dict, experiment_dir: Path) -> str:
    """The report of an experiment beyond the article: its claims, the runs, the figures."""
    sweep = report["sweep"]
    claims: list[Claim] = report["claims"]
    lines = [f"# Beyond the article: {report['title']}", "",
             f"The finding of {report['source']}, reproduced with this package.", "",
             f"Experiment `{experiment_dir}`: {sweep['runs']} run folder(s), "
             f"{sweep[runs.RunStatus.COMPLETE.value]} complete, "
             f"{sweep[runs.RunStatus.DIVERGED.value]} diverged, "
             f"{sweep[runs.RunStatus.INCOMPLETE.value]} unfinished. Everything below is read back "
             f"from the run folders (event files, history.json, step-0 weights, data "
             f"regenerated from config.json and checked); nothing is retrained.", ""]
    diverged = [run["name"] for run in report["runs"] if run["diverged"]]
    if diverged:
        lines += [f"**Diverged runs, excluded:** {names(diverged)}.", ""]
    lines += markdown_table([["claim", "finding", "verdict", "key figures"]] + [
        [claim.id, claim.claim, f"**{claim.verdict}**", claim.headline] for claim in claims])
    for claim in claims:
        lines += ["", f"## {claim.id}: {claim.claim}", "", f"**Verdict: {claim.verdict}**", "",
                  f"*Rule.* {claim.rule}", "", claim.conclusion, ""]
        for table in claim.tables:
            if len(table) > 1:
                lines += markdown_table(table) + [""]
    lines += ["## How to reproduce", "",
              "`make beyond` (or `reproduce beyond`) trains the runs into `logs/`; "
              f"`reproduce report {experiment_dir}` writes this report again.", "",
              "## Figures", ""]
    pngs = sorted((experiment_dir / figures.FIGURES_DIR).glob("*.png"))
    lines += ([f"![{png.stem}]({png.relative_to(experiment_dir).as_posix()})" for png in pngs]
              or [f"No figures yet in `{figures.FIGURES_DIR}/` (`reproduce beyond` draws them)."])
    return "\n".join(lines) + "\n"
