"""The overlay at the scale of a sweep: runs grouped by hyperparameter, x scales that compare
runs spanning orders of magnitude, and a tag's distribution over the logged steps.

Pure numpy over histograms ([left, right, count] buckets) and hparams dicts;
`plugin` reads them through TensorBoard's data provider and serves what
these functions compute.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from google.protobuf.message import DecodeError
from tensorboard.plugins.hparams import error as hparams_error
from tensorboard.plugins.hparams import metadata as hparams_metadata

from reproduce.runs import events

X_SCALES = ("auto", "linear", "symlog", "std")
AGGREGATES = ("auto", "runs", "bands")
VIEWS = ("step", "steps")
BY_RUN = "run"  # colour by: each run its own group
NO_PANEL = "none"
DEFAULT_COLOR = "activation"
MISSING = "(none)"  # the group of a run that lacks the hyperparameter
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
BAND_QUANTILES = (0.25, 0.5, 0.75)  # of a group's densities, across its runs
BAND_BINS = 60
SYMLOG_SPAN = 100.0  # auto x: symlog when the runs' mean |x| span more than this factor
BANDS_ABOVE = 12  # auto: a group's median and band instead of its runs above this many runs


def session_hparams(plugin_content: bytes) -> dict | None:
    """The hparams of an hparams plugin's `session_start_info` summary, or None if it is not one.

    Values are the hparam's own: str, float or bool.
    """
    try:
        info = hparams_metadata.parse_session_start_info_plugin_data(plugin_content)
    except (hparams_error.HParamsError, DecodeError):  # another summary, or damaged
        return None
    return {name: _value(value) for name, value in info.hparams.items()}


def _value(value):
    kind = value.WhichOneof("kind")
    return getattr(value, kind) if kind in ("number_value", "string_value", "bool_value") else None


def hparams_by_run(sessions: dict[str, dict], runs) -> dict[str, dict]:
    """Each run's hparams: those of its own session, else of the nearest folder above it.

    The HParams plugin's convention: a session's runs are the run folder
    holding its `session_start_info` and the folders below it (`train/`).
    """
    found = {}
    for run in runs:
        parts = run.split("/")
        for length in range(len(parts), -1, -1):
            session = "/".join(parts[:length]) if length else "."
            if session in sessions:
                found[run] = sessions[session]
                break
        else:
            found[run] = {}
    return found


def group_name(hparams: dict, name: str) -> str:
    """The group of a run when grouping by hparam `name`: its value as text, or MISSING."""
    value = hparams.get(name)
    if value is None:
        return MISSING
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def sort_groups(names) -> list[str]:
    """Group names in order: numbers by value, then text, MISSING last."""
    def key(name):
        try:
            return (0, float(name), "")
        except ValueError:
            return (2, 0.0, name) if name == MISSING else (1, 0.0, name)

    return sorted(set(names), key=key)


@dataclasses.dataclass(frozen=True)
class Scale:
    """The x axis: `linear`; `symlog`, sign(x) log10(1 + |x| / linthresh); or `std`, x / std.

    `std` divides each run's values by that run's own standard deviation at
    the step shown, so runs of any magnitude show their shapes side by side.
    """

    kind: str
    linthresh: float = 1.0

    def apply(self, values, std: float = 1.0) -> np.ndarray:
        values = np.asarray(values, np.float64)
        if self.kind == "symlog":
            return np.sign(values) * np.log10(1.0 + np.abs(values) / self.linthresh)
        if self.kind == "std":
            return values / (std if std > 0 and np.isfinite(std) else 1.0)
        return values

    def to_json(self) -> dict:
        return {"kind": self.kind, "linthresh": self.linthresh}


def choose_scale(requested: str, mean_abs) -> Scale:
    """The x scale for runs whose mean |x| are `mean_abs`; `auto` picks symlog when they span
    more than SYMLOG_SPAN, with linthresh a tenth of the smallest, else linear."""
    positive = [value for value in mean_abs if value is not None and value > 0]
    linthresh = min(positive) / 10 if positive else 1.0
    if requested == "auto":
        spread = max(positive) / min(positive) if positive else 1.0
        requested = "symlog" if spread > SYMLOG_SPAN else "linear"
    return Scale(requested, linthresh)


def choose_aggregate(requested: str, run_count: int) -> str:
    if requested == "auto":
        return "bands" if run_count > BANDS_ABOVE else "runs"
    return requested


def finite_buckets(buckets) -> np.ndarray:
    buckets = np.asarray(buckets, np.float64).reshape(-1, 3)
    return buckets[np.all(np.isfinite(buckets), axis=1)]


def transformed(buckets, scale: Scale, std: float) -> np.ndarray:
    """The buckets with their edges on `scale` (a monotone map, so still left <= right)."""
    buckets = finite_buckets(buckets)
    return np.column_stack([scale.apply(buckets[:, 0], std), scale.apply(buckets[:, 1], std),
                            buckets[:, 2]])


def cumulative(buckets, points) -> np.ndarray:
    """The share of the histogram's count at or below each of `points`, each bucket's count
    spread evenly over it (a bucket of zero width: all at its edge)."""
    buckets = np.asarray(buckets, np.float64).reshape(-1, 3)
    total = buckets[:, 2].sum()
    points = np.asarray(points, np.float64)
    if not total > 0:
        return np.zeros(points.shape)
    left, right, count = buckets[:, :1], buckets[:, 1:2], buckets[:, 2:]
    width = right - left
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = np.where(width > 0, (points[None, :] - left) / np.where(width > 0, width, 1), 0)
    share = np.where(width > 0, np.clip(spread, 0, 1), points[None, :] >= left)
    return (share * count).sum(axis=0) / total


def densities(buckets, edges) -> np.ndarray:
    """The histogram's density (share of its count per unit of x) in each bin of `edges`."""
    return np.diff(cumulative(buckets, edges)) / np.diff(edges)


def quantiles(buckets, levels=QUANTILES) -> list[float | None]:
    """The values below which each share of `levels` of the count lies (linear within
    buckets), or Nones for an empty histogram."""
    buckets = np.asarray(buckets, np.float64).reshape(-1, 3)
    buckets = buckets[buckets[:, 2] > 0]
    if not len(buckets):
        return [None] * len(levels)
    buckets = buckets[np.argsort(buckets[:, 0], kind="stable")]
    below = np.concatenate([[0.0], np.cumsum(buckets[:, 2])]) / buckets[:, 2].sum()
    values = []
    for level in levels:
        index = min(int(np.searchsorted(below, level, side="left")) - 1, len(buckets) - 1)
        index = max(index, 0)
        left, right, count = buckets[index]
        inside = (level - below[index]) / (below[index + 1] - below[index])
        values.append(float(left + np.clip(inside, 0, 1) * (right - left)))
    return values


def panel_edges(all_buckets) -> np.ndarray:
    """BAND_BINS + 1 even edges over the filled range of all the (transformed) histograms."""
    filled = [bucket for buckets in all_buckets for bucket in buckets if bucket[2] > 0]
    if not filled:
        return np.linspace(-1, 1, BAND_BINS + 1)
    low = min(bucket[0] for bucket in filled)
    high = max(bucket[1] for bucket in filled)
    if not high > low:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, BAND_BINS + 1)


def band(all_buckets, edges) -> dict:
    """The median density of the runs' histograms in each bin, and the 25-75% band around it."""
    stacked = np.stack([densities(buckets, edges) for buckets in all_buckets])
    low, median, high = np.percentile(stacked, [100 * level for level in BAND_QUANTILES], axis=0)
    return {"edges": edges.tolist(), "low": low.tolist(), "median": median.tolist(),
            "high": high.tolist()}


def steps_band(per_run: list[dict]) -> dict:
    """A group over the steps: at each step any of its runs logged, the median across those
    runs of each quantile. `per_run` holds {"steps": [...], "q": [per step, QUANTILES]}."""
    steps = sorted({step for run in per_run for step in run["steps"]})
    columns = []
    for step in steps:
        rows = [run["q"][run["steps"].index(step)] for run in per_run if step in run["steps"]]
        rows = [row for row in rows if None not in row]
        columns.append(np.median(np.asarray(rows), axis=0).tolist() if rows
                       else [None] * len(QUANTILES))
    return {"steps": steps, "q": [list(level) for level in zip(*columns)] if columns else []}


def steps_quantiles(histograms, scale: Scale) -> dict:
    """A run's QUANTILES of a tag at each logged step, on `scale` (`std`: that step's std)."""
    steps, values = [], []
    for step, buckets in zip(histograms.steps, histograms.buckets):
        std = events.summarize_histogram(buckets).std
        steps.append(int(step))
        values.append(quantiles(transformed(buckets, scale, std)))
    return {"steps": steps, "q": values}


def arrange(series: list[dict], run_events: dict, tag: str, hparams: dict, color: str,
            panel: str, x: str, agg: str, view: str) -> dict:
    """Adds each series' group and panel, and returns the grouped part of the data route's
    answer: the scale, the groups in order, and per panel its runs, range on the scale, and
    (agg `bands`) each group's band, (view `steps`) each group's quantiles over the steps.

    `series` are the answer's runs, with their buckets and std at the step shown;
    `run_events` each run's `EventData` with every logged step of `tag`.
    """
    for item in series:
        values = hparams.get(item["run"], {})
        item["group"] = item["run"] if color == BY_RUN else group_name(values, color)
        item["panel"] = "" if panel == NO_PANEL else group_name(values, panel)
    scale = choose_scale(x, [item["mean_abs"] for item in series])
    aggregate = choose_aggregate(agg, len(series))
    groups = (list(dict.fromkeys(item["group"] for item in series)) if color == BY_RUN
              else sort_groups(item["group"] for item in series))
    panel_names = [""] if panel == NO_PANEL else sort_groups(item["panel"] for item in series)
    panels = []
    for name in panel_names:
        members = [item for item in series if item["panel"] == name]
        shown = {item["run"]: transformed(item["buckets"], scale, item["std"])
                 for item in members}
        edges = panel_edges(shown.values())
        by_group = {group: [item["run"] for item in members if item["group"] == group]
                    for group in groups}
        by_group = {group: runs for group, runs in by_group.items() if runs}
        entry = {"name": name, "runs": [item["run"] for item in members],
                 "range": [float(edges[0]), float(edges[-1])]}
        if aggregate == "bands":
            entry["bands"] = [{"group": group, "runs": runs,
                               **band([shown[run] for run in runs], edges)}
                              for group, runs in by_group.items()]
        if view == "steps":
            per_run = {item["run"]: steps_quantiles(run_events[item["run"]].histograms[tag], scale)
                       for item in members}
            for item in members:
                item["quantiles"] = per_run[item["run"]]
            entry["steps"] = [{"group": group, "runs": runs,
                               **steps_band([per_run[run] for run in runs])}
                              for group, runs in by_group.items()]
        panels.append(entry)
    return {"color": color, "panel": panel, "x": scale.kind, "scale": scale.to_json(),
            "agg": aggregate, "view": view, "groups": groups, "quantiles": list(QUANTILES),
            "panels": panels}
