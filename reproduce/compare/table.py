"""The comparison's numbers: `tabulate`, a pure function over histograms already read.

Per histogram tag and run: mean |x| and std at a few steps and the tag's norm
scalar at the first and last of them; per run, the ratio of the first layer's
gradient norm to the last layer's. `reproduce compare` and the TensorBoard
plugin (`reproduce.tensorboard.histogram_overlay`, on what TensorBoard's data
provider serves) both call it, so both show the same table.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math

import numpy as np

from callbacks import tags as tag_names
from reproduce.errors import ConfigError
from reproduce.runs import events

DEFAULT_TAGS = ("gradients/*",)
# The scalar holding the L2 norm of each histogram kind's tensors.
NORM_KINDS = {tag_names.GRADIENTS: tag_names.GRADIENT_NORM,
              tag_names.WEIGHTS: tag_names.WEIGHT_NORM}
SYMBOLS = {tag_names.GRADIENTS: "g", tag_names.WEIGHTS: "w"}  # column names: mean|g|
KERNEL = "kernel"


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
    norm = data.scalars.get(norm_tag(tag))  # None for a kind without a norm scalar
    return TagRow(
        tag=tag, run=label, steps=used,
        mean_abs=[stat.mean_abs for stat in stats], std=[stat.std for stat in stats],
        norm_first=_scalar_near(norm, used[0]), norm_last=_scalar_near(norm, used[-1]),
    )


def norm_tag(tag: str) -> str | None:
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
    norms = {norm for tag in histogram_tags if (norm := norm_tag(tag))}
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


def format_number(value: float | None) -> str:
    """A table cell: three significant digits, `-` for a missing or non-finite value."""
    return "-" if value is None or not math.isfinite(value) else f"{value:.3g}"
