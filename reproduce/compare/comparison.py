"""Cross-run comparison of logged histograms, layer by layer (gradients by default).

`compare_runs(["logs/article/circles/*-s0"])` reads the runs' `train/` events
and returns a `Comparison`: per histogram tag and run, mean |x| and std at a
few steps and the tag's norm scalar at the first and last of them, plus per
run the ratio of the first layer's gradient norm to the last layer's (well
below 1: the gradient vanishes on its way to the input). It also writes, into
`<experiment>/compare/<runs>/` unless told otherwise:

    <tag>.png    e.g. gradients__dense_1__kernel.png: the runs' histograms
                 overlaid, one row per step, as TensorBoard's offset view
    norms.png    each tag's norm scalar (and the global gradient norm)
                 against step, one line per run

The numbers come from `table.tabulate`, a pure function over histograms and
norm scalars already read; the TensorBoard plugin
(`reproduce.tensorboard.histogram_overlay`) calls it on what TensorBoard's data
provider serves, so both show the same table. The figures are `overlays`'.

Example:

```python
comparison = compare_runs(["logs/article/circles/*-s0"], steps=[0, 750])
print(comparison.format_table())
```
"""


from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import warnings
from pathlib import Path

from reproduce import jsonable, runs
from reproduce.compare.overlays import plot_comparison
from reproduce.compare.table import (
    DEFAULT_TAGS, SYMBOLS, NormRatio, TagRow, format_number, tabulate)
from reproduce.errors import ConfigError, RunNotFoundError
from reproduce.runs import events

COMPARE_DIR = "compare"  # under the experiment folder
MAX_FOLDER_NAME = 80  # longer run lists get a digest as their folder name


@dataclasses.dataclass
class Comparison:
    """What `compare_runs` found: a table per tag and run, ratios, notes and figures."""

    run_dirs: list[Path]
    labels: list[str]  # one per run, as shown in tables and legends
    tags: list[str]  # histogram tags compared, layer order
    steps: list[int]  # compared steps (a run may use its nearest logged step, see notes)
    rows: list[TagRow]
    ratios: list[NormRatio]
    notes: list[str]
    figures: list[Path] = dataclasses.field(default_factory=list)

    def format_table(self) -> str:
        """Returns the comparison as aligned text for a terminal."""
        steps = ", ".join(map(str, self.steps))
        lines = [f"{len(self.labels)} runs compared at steps {steps}"]
        width = max(len("run"), *map(len, self.labels))
        for tag in self.tags:
            symbol = SYMBOLS.get(tag.split("/", 1)[0], "x")
            headers = ([f"mean|{symbol}|@{step}" for step in self.steps]
                       + [f"std@{step}" for step in self.steps]
                       + [f"norm@{self.steps[0]}", f"norm@{self.steps[-1]}"])
            lines += ["", tag, _format_row("run", headers, width)]
            for row in (row for row in self.rows if row.tag == tag):
                values = row.mean_abs + row.std + [row.norm_first, row.norm_last]
                lines.append(_format_row(row.run, map(format_number, values), width))
        if self.ratios:
            layers = {(ratio.first, ratio.last) for ratio in self.ratios}
            # Runs of different depths name their layers alike, but say so if not.
            pair = " / ".join(layers.pop()) if len(layers) == 1 else "first / last layer"
            lines += ["", f"gradient norm {pair} (far below 1: vanishing toward the input)",
                      _format_row("run", [f"@{step}" for step in self.steps], width)]
            lines += [_format_row(ratio.run, map(format_number, ratio.ratios), width)
                      for ratio in self.ratios]
        if self.notes:
            lines += ["", "notes:"] + [f"  {note}" for note in self.notes]
        if self.figures:
            lines += ["", f"figures: {self.figures[0].parent}/"]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Returns the table as plain dicts and lists; NaN becomes None."""
        return jsonable.finite({
            "runs": [{"label": label, "path": str(path)}
                     for label, path in zip(self.labels, self.run_dirs)],
            "tags": self.tags,
            "steps": self.steps,
            "rows": [dataclasses.asdict(row) for row in self.rows],
            "gradient_norm_ratios": [dataclasses.asdict(ratio) for ratio in self.ratios],
            "notes": self.notes,
            "figures": [str(path) for path in self.figures],
        })

    def to_json(self) -> str:
        """Returns `to_dict()` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2)


def _format_row(first: str, cells, width: int) -> str:
    return f"  {first:<{width}}" + "".join(f"  {cell:>11}" for cell in cells)


def compare_runs(patterns, tags=DEFAULT_TAGS, steps=None, out_dir=None) -> Comparison:
    """Compares the histograms of several runs and writes the overlay figures.

    Args:
        patterns: run folders, folders holding runs, or glob patterns of them.
        tags: fnmatch globs of the histogram tags to compare.
        steps: steps to compare; default the first, middle and last logged
            step (of all runs together, when they log different steps). A run
            missing a step uses its nearest logged step, and the comparison's
            notes say so.
        out_dir: figure folder; default `<experiment of the first run>/compare/<runs>`.

    Returns:
        The `Comparison`, its `figures` listing the PNGs written; a run without
        readable training events is left out of it with a warning.

    Raises:
        RunNotFoundError: a pattern matches no run, or no run holds training events.
        ConfigError: no histogram tag matches `tags`, a step is negative, or
            `out_dir` is or lies below a file.
    """
    if steps and min(steps) < 0:
        raise ConfigError(f"steps must be at least 0, got {min(steps)}")
    if out_dir is not None:
        existing = next(path for path in (Path(out_dir), *Path(out_dir).parents) if path.exists())
        if not existing.is_dir():
            raise ConfigError(f"figure folder {out_dir} cannot be created: {existing} is a file")
    run_dirs = resolve_runs(patterns)
    train_events = {run_dir: runs.Run(run_dir).read_events().train for run_dir in run_dirs}
    empty = [run_dir for run_dir, data in train_events.items() if not data.event_count]
    if len(empty) == len(run_dirs):
        raise RunNotFoundError(f"no readable event files in {runs.TRAIN_DIR}/ of "
                               f"{_describe(run_dirs)}")
    for run_dir in empty:
        warnings.warn(f"skipping run {run_dir}: no readable event files in {runs.TRAIN_DIR}/",
                      stacklevel=2)
        del train_events[run_dir]
    comparison = build_comparison(train_events, tags, steps)
    out_dir = Path(out_dir) if out_dir is not None else choose_out_dir(comparison)
    comparison.figures = plot_comparison(comparison, train_events, out_dir)
    return comparison


def resolve_runs(patterns) -> list[Path]:
    """Expands run folders and glob patterns into the sorted run folders they hold.

    Raises:
        RunNotFoundError: a pattern matches no folder, or its folders hold no run.
    """
    found = set()
    for pattern in patterns:
        folders = [Path(match) for match in sorted(glob.glob(str(pattern)))
                   if Path(match).is_dir()]
        if not folders:
            raise RunNotFoundError(f"no run folder matches {str(pattern)!r}")
        matched = [run_dir for folder in folders for run_dir in runs.find_runs(folder)]
        if not matched:
            raise RunNotFoundError(f"{_describe(folders)} holds no run folder "
                                   f"(no {runs.CONFIG_FILE})")
        found.update(matched)
    return sorted(found)


def _describe(paths: list[Path]) -> str:
    """The path, or the first of several and how many there are."""
    return str(paths[0]) if len(paths) == 1 else f"{paths[0]} and {len(paths) - 1} more"


def build_comparison(train_events: dict[Path, events.EventData], tags=DEFAULT_TAGS,
                     steps=None) -> Comparison:
    """Computes the comparison table from runs' `train/` events, without figures.

    Args:
        train_events: run folder -> its `train/` `EventData`.
        tags, steps: as `compare_runs`.

    Raises:
        ConfigError: no histogram tag matches `tags`.
    """
    labels = _label_runs(list(train_events))
    table = tabulate(dict(zip(labels, train_events.values())), tags, steps)
    return Comparison(list(train_events), labels, table.tags, table.steps, table.rows,
                      table.ratios, table.notes)


def _label_runs(run_dirs: list[Path]) -> list[str]:
    """`<dataset>/<name>` per run; full paths when two runs would share a label."""
    labels = ["/".join(path.parts[-2:]) for path in run_dirs]
    return labels if len(set(labels)) == len(labels) else [str(path) for path in run_dirs]


def choose_out_dir(comparison: Comparison) -> Path:
    """`<experiment of the first run>/compare/<name of the run list>`."""
    # A run folder is <experiment>/<dataset>/<name> (runs.run_dir).
    experiment_dir = runs.experiment_dir_of(comparison.run_dirs[0])
    name = "_vs_".join(label.replace("/", "-") for label in comparison.labels)
    if len(name) > MAX_FOLDER_NAME:
        digest = hashlib.sha1(name.encode()).hexdigest()[:10]
        name = f"{len(comparison.labels)}-runs-{digest}"
    return experiment_dir / COMPARE_DIR / name
