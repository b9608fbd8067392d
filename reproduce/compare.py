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

The numbers come from `tabulate`, a pure function over histograms and norm
scalars already read; the TensorBoard plugin (`reproduce.histogram_overlay`)
calls it on what TensorBoard's data provider serves, so both show the same
table.

Example:

```python
comparison = compare_runs(["logs/article/circles/*-s0"], steps=[0, 750])
print(comparison.format_table())
```
"""

from __future__ import annotations

import dataclasses
import fnmatch
import glob
import hashlib
import json
import math
import warnings
from pathlib import Path

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator

from callbacks import tags as tag_names
from reproduce import events, jsonable, runs
from reproduce.errors import ConfigError, RunNotFoundError
from reproduce.figures import plt, save

DEFAULT_TAGS = ("gradients/*",)
COMPARE_DIR = "compare"  # under the experiment folder
NORMS_FILE = "norms.png"
MAX_FOLDER_NAME = 80  # longer run lists get a digest as their folder name
# The scalar holding the L2 norm of each histogram kind's tensors.
NORM_KINDS = {tag_names.GRADIENTS: tag_names.GRADIENT_NORM,
              tag_names.WEIGHTS: tag_names.WEIGHT_NORM}
SYMBOLS = {tag_names.GRADIENTS: "g", tag_names.WEIGHTS: "w"}  # column names: mean|g|
KERNEL = "kernel"
ROW_HEIGHT = 1.0  # ridgeline: peak height of a curve; rows are 1 apart, so peaks touch
FILL_MAX_RUNS = 6  # more overlaid runs than this are drawn as lines only, to stay legible
MAX_LEGEND_RUNS = 12  # a ridgeline of more runs leaves the legend to norms.png (same colours)
LEGEND_ROWS = 25  # legend entries per column
LEGEND_COLUMN_INCHES = 2.2  # width of a legend column beside the norm panels
LOG_Y_RATIO = 100  # a norm panel gets a log y axis when its values span more than this


@dataclasses.dataclass
class TagRow:
    """One histogram tag of one run at the compared steps."""

    tag: str
    run: str  # run label
    steps: list[int]  # the logged step used for each compared step
    mean_abs: list[float]
    std: list[float]
    norm_first: float | None  # the tag's norm scalar at steps[0]; None when not logged
    norm_last: float | None  # ... at steps[-1]


@dataclasses.dataclass
class NormRatio:
    """First-layer over last-layer gradient norm of one run (the vanishing-gradient indicator)."""

    run: str
    first: str  # e.g. "dense_1/kernel"
    last: str  # e.g. "output/kernel"
    steps: list[int]  # the logged step used for each compared step
    ratios: list[float]


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


def format_number(value: float | None) -> str:
    """A table cell: three significant digits, `-` for a missing or non-finite value."""
    return "-" if value is None or not math.isfinite(value) else f"{value:.3g}"


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


@dataclasses.dataclass
class Table:
    """The numbers of a comparison, whatever read the histograms (see `tabulate`)."""

    tags: list[str]  # histogram tags compared, in the order selected
    steps: list[int]  # compared steps
    rows: list[TagRow]
    ratios: list[NormRatio]
    notes: list[str]


def tabulate(run_events: dict[str, events.EventData], tags=DEFAULT_TAGS, steps=None) -> Table:
    """Computes the comparison's numbers from histograms and norm scalars already read.

    The one computation behind `reproduce compare` and the TensorBoard
    plugin's table: pure, it reads nothing. Only `histograms` and the norm
    scalars (`gradient_norm/...`, `weight_norm/...`) of each `EventData` are
    used; the first and last `gradient_norm/<layer>/kernel` in `scalars` order
    are the ratio's layers.

    Args:
        run_events: run label -> its events, in the order the table lists runs.
        tags, steps: as `compare_runs`.

    Raises:
        ConfigError: no histogram tag matches `tags`.
    """
    selected = _select_tags(run_events.values(), tags)
    notes = []
    step_sets = [set(data.histograms[tag].steps.tolist())
                 for data in run_events.values() for tag in selected if tag in data.histograms]
    if steps:
        targets = sorted(set(int(step) for step in steps))
    else:
        targets = _first_middle_last(sorted(set.union(*step_sets)))
        if any(step_set != step_sets[0] for step_set in step_sets):
            notes.append("the runs log different steps; each uses its nearest logged step")
    rows = []
    for tag in selected:
        for label, data in run_events.items():
            if tag not in data.histograms:
                notes.append(f"{label}: no {tag}")
                continue
            rows.append(_tag_row(tag, label, data, targets, notes))
    ratios = [ratio for label, data in run_events.items()
              if (ratio := _norm_ratio(label, data, targets, notes)) is not None]
    return Table(selected, targets, rows, ratios, list(dict.fromkeys(notes)))


def _label_runs(run_dirs: list[Path]) -> list[str]:
    """`<dataset>/<name>` per run; full paths when two runs would share a label."""
    labels = ["/".join(path.parts[-2:]) for path in run_dirs]
    return labels if len(set(labels)) == len(labels) else [str(path) for path in run_dirs]


def _select_tags(all_events, globs) -> list[str]:
    """Histogram tags matching any glob: by glob, then in the order written (layer order)."""
    written = list(dict.fromkeys(tag for data in all_events for tag in data.histograms))
    selected = [tag for pattern in globs for tag in written if fnmatch.fnmatchcase(tag, pattern)]
    if not selected:
        kinds = sorted({tag.split("/", 1)[0] + "/*" for tag in written}) or ["none"]
        raise ConfigError(f"no histogram tag matches {' '.join(map(repr, globs))}; "
                          f"the runs have {', '.join(kinds)}")
    return list(dict.fromkeys(selected))


def _first_middle_last(steps: list[int]) -> list[int]:
    return sorted({steps[0], steps[len(steps) // 2], steps[-1]})


def _nearest(logged: np.ndarray, step: int) -> int:
    """The logged step nearest to `step`; the earlier one on a tie."""
    return int(logged[np.argmin(np.abs(logged - step))])


def _used_steps(label: str, logged: np.ndarray, targets: list[int], notes: list[str]) -> list[int]:
    used = [_nearest(logged, target) for target in targets]
    notes.extend(f"{label}: step {target} not logged, used step {step}"
                 for target, step in zip(targets, used) if step != target)
    return used


def _tag_row(tag, label, data: events.EventData, targets, notes) -> TagRow:
    histograms = data.histograms[tag]
    used = _used_steps(label, histograms.steps, targets, notes)
    stats = [events.summarize_histogram(histograms.at(step)) for step in used]
    norm = data.scalars.get(_norm_tag(tag))  # None for a kind without a norm scalar
    return TagRow(
        tag=tag, run=label, steps=used,
        mean_abs=[stat.mean_abs for stat in stats], std=[stat.std for stat in stats],
        norm_first=_scalar_near(norm, used[0]), norm_last=_scalar_near(norm, used[-1]),
    )


def _norm_tag(tag: str) -> str | None:
    """The norm scalar of a histogram tag (`gradients/k` -> `gradient_norm/k`), or None."""
    kind, _, key = tag.partition("/")
    return tag_names.tag(NORM_KINDS[kind], key) if kind in NORM_KINDS and key else None


def _scalar_near(scalars: events.Scalars | None, step: int) -> float | None:
    return None if scalars is None else scalars.at(_nearest(scalars.steps, step))


def scalar_tags_read(histogram_tags, scalar_tags) -> set[str]:
    """The tags of `scalar_tags` that `tabulate` reads when comparing `histogram_tags`.

    Each histogram tag's norm scalar, and every layer's kernel gradient norm
    (the ratio's first and last layer are among them).
    """
    norms = {norm for tag in histogram_tags if (norm := _norm_tag(tag))}
    return {tag for tag in scalar_tags if tag in norms or _is_kernel_gradient_norm(tag)}


def _is_kernel_gradient_norm(tag: str) -> bool:
    return tag.startswith(tag_names.GRADIENT_NORM + "/") and tag.endswith("/" + KERNEL)


def _norm_ratio(label, data: events.EventData, targets, notes) -> NormRatio | None:
    prefix = tag_names.GRADIENT_NORM + "/"
    kernels = [tag for tag in data.scalars if _is_kernel_gradient_norm(tag)]
    if len(kernels) < 2:
        notes.append(f"{label}: fewer than two layers' gradient norms logged, no ratio")
        return None
    first, last = data.scalars[kernels[0]], data.scalars[kernels[-1]]
    used = _used_steps(label, first.steps, targets, notes)
    ratios = [_divide(first.at(step), _scalar_near(last, step)) for step in used]
    return NormRatio(label, kernels[0][len(prefix):], kernels[-1][len(prefix):], used, ratios)


def _divide(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def choose_out_dir(comparison: Comparison) -> Path:
    """`<experiment of the first run>/compare/<name of the run list>`."""
    # A run folder is <experiment>/<dataset>/<name> (runs.run_dir).
    experiment_dir = runs.experiment_dir_of(comparison.run_dirs[0])
    name = "_vs_".join(label.replace("/", "-") for label in comparison.labels)
    if len(name) > MAX_FOLDER_NAME:
        digest = hashlib.sha1(name.encode()).hexdigest()[:10]
        name = f"{len(comparison.labels)}-runs-{digest}"
    return experiment_dir / COMPARE_DIR / name


def plot_comparison(comparison: Comparison, train_events: dict[Path, events.EventData],
                    out_dir: Path) -> list[Path]:
    """Writes one ridgeline PNG per compared tag and `norms.png`; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    colour_of = dict(zip(comparison.labels, _run_colours(len(comparison.labels))))
    by_label = dict(zip(comparison.labels, train_events.values()))
    paths = []
    for tag in comparison.tags:
        rows = [row for row in comparison.rows if row.tag == tag]
        paths.append(_plot_ridgeline(comparison.steps, tag, rows, by_label, colour_of,
                                     out_dir / (tag.replace("/", "__") + ".png")))
    paths.append(_plot_norms(comparison, by_label, colour_of, out_dir / NORMS_FILE))
    return paths


def _run_colours(count: int) -> list:
    if count <= 10:
        return list(plt.get_cmap("tab10").colors[:count])
    return [plt.get_cmap("viridis")(index / (count - 1)) for index in range(count)]


def _legend(axes, colour_of: dict, **options) -> None:
    # Proxy lines: the curves are line collections, which carry no label each.
    handles = [Line2D([], [], color=colour, lw=1.5) for colour in colour_of.values()]
    axes.legend(handles, list(colour_of), fontsize="x-small",
                ncol=math.ceil(len(handles) / LEGEND_ROWS), **options)


def _plot_ridgeline(steps, tag, rows, by_label, colour_of, path: Path) -> Path:
    """Each compared step is a row, first step on top; each run's histogram drawn in its colour.

    Every curve is scaled to its own peak, so the figure compares location and
    spread; the table holds the magnitudes.
    """
    figure, axes = plt.subplots(figsize=(8, 1.5 + 1.1 * len(steps)))
    curves, colours = [], []
    for row in rows:
        histograms = by_label[row.run].histograms[tag]
        for index, step in enumerate(row.steps):
            x, height = _outline(histograms.at(step))
            baseline = len(steps) - 1 - index
            curves.append(np.column_stack([x, baseline + height]))
            colours.append(colour_of[row.run])
            if len(rows) <= FILL_MAX_RUNS:
                axes.fill_between(x, baseline, baseline + height, color=colour_of[row.run],
                                  alpha=0.2, lw=0)
    # One collection draws hundreds of curves far faster than one artist each.
    axes.add_collection(LineCollection(curves, colors=colours, linewidths=1))
    axes.autoscale_view()
    axes.set_yticks(range(len(steps)), [f"step {step}" for step in reversed(steps)])
    axes.set_ylim(-0.1, len(steps) - 1 + 1.4 * ROW_HEIGHT)  # headroom for the legend
    axes.set_xlabel(tag)
    axes.set_title(f"{tag}: {len(rows)} runs, each curve scaled to its peak")
    if len(rows) <= MAX_LEGEND_RUNS:
        _legend(axes, {row.run: colour_of[row.run] for row in rows}, loc="upper right")
    return save(figure, path)


def _outline(buckets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The histogram's density as a closed step outline, scaled to a peak of ROW_HEIGHT."""
    lefts, rights, counts = buckets[:, 0], buckets[:, 1], buckets[:, 2]
    widths = rights - lefts
    if not len(buckets) or not np.any(widths > 0):
        # Constant data (left == right) or nothing: a spike at the value.
        value = float(lefts[0]) if len(buckets) else 0.0
        return np.array([value, value]), np.array([0.0, ROW_HEIGHT])
    varied = widths > 0  # zero-width buckets only occur in constant histograms
    density = counts[varied] / widths[varied]
    peak = density.max() or 1.0
    x = np.concatenate([[lefts[varied][0]],
                        np.column_stack([lefts[varied], rights[varied]]).ravel(),
                        [rights[varied][-1]]])
    height = np.concatenate([[0.0], np.repeat(density / peak * ROW_HEIGHT, 2), [0.0]])
    return x, height


def _plot_norms(comparison, by_label, colour_of, path: Path) -> Path:
    """One panel per norm scalar (each compared tag's, then the global gradient norm)."""
    panels = [norm for tag in comparison.tags if (norm := _norm_tag(tag))]
    panels.append(tag_names.GLOBAL_GRADIENT_NORM)
    panels = [tag for tag in dict.fromkeys(panels)
              if any(tag in data.scalars for data in by_label.values())]
    columns = min(3, max(1, len(panels)))
    grid_rows = max(1, math.ceil(len(panels) / columns))
    legend_width = LEGEND_COLUMN_INCHES * math.ceil(len(colour_of) / LEGEND_ROWS)
    width = 4.5 * columns + legend_width
    figure, grid = plt.subplots(grid_rows, columns, figsize=(width, 3 * grid_rows),
                                squeeze=False)
    # Fixed margins: tight and constrained layouts measure every tick label, which
    # took longer than drawing.
    figure.subplots_adjust(left=0.5 / width, right=1 - (legend_width + 0.2) / width,
                           bottom=0.6 / (3 * grid_rows), top=1 - 0.35 / (3 * grid_rows),
                           hspace=0.45, wspace=0.25)
    for axes, tag in zip(grid.ravel(), panels):
        series = {label: data.scalars[tag] for label, data in by_label.items()
                  if tag in data.scalars}
        axes.add_collection(LineCollection(
            [np.column_stack([scalars.steps, scalars.values]) for scalars in series.values()],
            colors=[colour_of[label] for label in series], linewidths=1))
        axes.autoscale_view()
        for step in comparison.steps:
            axes.axvline(step, color="0.7", lw=0.8, ls="--")
        values = np.concatenate([scalars.values for scalars in series.values()])
        positive = values[np.isfinite(values) & (values > 0)]
        if len(positive) and positive.max() > LOG_Y_RATIO * positive.min():
            axes.set_yscale("log")
            axes.set_ylim(positive.min() / 1.5, positive.max() * 1.5)
            # Minor log ticks are hundreds of artists and most of the drawing time.
            axes.yaxis.set_minor_locator(NullLocator())
        axes.set_title(tag, fontsize="small")
        axes.set_xlabel("step")
    for axes in grid.ravel()[len(panels):]:
        axes.set_visible(False)
    _legend(figure, colour_of, loc="upper right")
    return save(figure, path)
