"""The Histogram overlay tab's backend: a `TBPlugin` with three routes over the data provider.

Under `/data/plugin/histogram_overlay/`:

    tags?tags=REGEX                    the histogram tags matching REGEX (every tag when
                                       empty), sorted, and the tag to show first
    data?tag=TAG&runs=REGEX&step=STEP  for each run that has TAG and whose name matches
         &color=H&panel=H&x=X          REGEX (`re.search`; every run when empty): its
         &agg=A&view=V                 histogram at its logged step nearest STEP (default
                                       the last logged step), the `reproduce compare`
                                       numbers (mean |x|, std, norm, first-to-last-layer
                                       gradient norm ratio) and the layer view (norm and
                                       std of each layer of TAG); the runs grouped by the
                                       value of hparam H (`color`, default `activation`;
                                       `run`: each run its own) in panels by another
                                       (`panel`, default `none`); the x scale X (`auto`,
                                       `linear`, `symlog`, `std`); with A=`bands` each
                                       group's median density and 25-75% band (`auto`:
                                       above 12 runs); with V=`steps` the 5/25/50/75/95%
                                       quantiles of every run and group at every step
    static/FILE                        the frontend (`static/index.js` and what it loads)

Everything is read through TensorBoard's data provider (`list_tensors` /
`read_tensors` of the `histograms` plugin, and the `scalars` plugin for the
norm scalars the table shows), so any histogram TensorBoard shows can be
overlaid. A bad request (no tag, an unknown tag, a regex that does not
compile, a step that is not a whole number or lies outside the logged steps,
a run filter that leaves no run) is HTTP 400 with a message, never a 500.

Example, as the tab fetches it:

    GET /data/plugin/histogram_overlay/data?tag=gradients/dense_1/kernel&runs=circles/&step=750
    GET /data/plugin/histogram_overlay/data?tag=gradients/dense_1/kernel&color=activation
        &panel=dataset&x=symlog&view=steps

The runs' hyperparameters are those of the HParams plugin: a run folder's
`session_start_info` summary applies to it and the folders below it.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

import numpy as np
from tensorboard import errors, plugin_util
from tensorboard.backend import http_util
from tensorboard.data import provider
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import metadata as hparams_metadata
from werkzeug import wrappers

from callbacks import tags as tag_names
from reproduce import compare, jsonable
from reproduce.runs import events
from reproduce.tensorboard.histogram_overlay import grouping

PLUGIN_NAME = "histogram_overlay"  # also the route prefix and the URL's tab name
TAB_NAME = "Histogram overlay"
STATIC_DIR = Path(__file__).parent / "static"
ENTRY_MODULE = "index.js"
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css"}
# Ask the data provider for every datum it holds: `reproduce tensorboard` keeps
# every step (stock TensorBoard keeps 500 histograms per tag, sampled).
ALL_DATA = 10**9
DEFAULT_KIND = tag_names.GRADIENTS  # the default tag is the first tag of this kind
VIEW_OPTIONS = ("color", "panel", "x", "agg", "view")  # of the data route, as in the URL
_DIGITS = re.compile(r"(\d+)")
_ENDS_IN_NUMBER = re.compile(r"\d$")


class HistogramOverlayPlugin(base_plugin.TBPlugin):
    """Overlays one histogram tag of many runs; the module docstring lists the routes."""

    plugin_name = PLUGIN_NAME

    def __init__(self, context):
        self._data_provider = context.data_provider

    def get_plugin_apps(self):
        return {"/tags": self._serve_tags, "/data": self._serve_data,
                "/static/*": self._serve_static}

    def is_active(self):
        return False  # `data_plugin_names` shows the tab wherever histograms exist

    def data_plugin_names(self):
        return (events.HISTOGRAMS_PLUGIN,)

    def frontend_metadata(self):
        # The tab fetches on each change of its controls; TensorBoard's reload
        # button would not reach it, so it is hidden.
        return base_plugin.FrontendMetadata(es_module_path=f"/static/{ENTRY_MODULE}",
                                            tab_name=TAB_NAME, disable_reload=True)

    @wrappers.Request.application
    def _serve_tags(self, request):
        body = self.tags_impl(plugin_util.context(request.environ),
                              plugin_util.experiment_id(request.environ),
                              request.args.get("tags", ""))
        return http_util.Respond(request, body, "application/json")

    @wrappers.Request.application
    def _serve_data(self, request):
        options = {name: request.args[name] for name in VIEW_OPTIONS if request.args.get(name)}
        body = self.data_impl(plugin_util.context(request.environ),
                              plugin_util.experiment_id(request.environ),
                              request.args.get("tag", ""), request.args.get("runs", ""),
                              request.args.get("step"), **options)
        return http_util.Respond(request, body, "application/json")

    @wrappers.Request.application
    def _serve_static(self, request):
        # Only the files of static/ by name: no path from the request reaches the disk.
        name = request.path.rsplit("/", 1)[-1]
        files = {path.name: path for path in STATIC_DIR.iterdir()
                 if path.suffix in CONTENT_TYPES}
        if name not in files:
            raise errors.NotFoundError(f"no static file {name!r}")
        return http_util.Respond(request, files[name].read_bytes(),
                                 CONTENT_TYPES[files[name].suffix])

    def tags_impl(self, ctx, experiment, tags_regex: str = "") -> dict:
        """Returns {"tags": histogram tags matching `tags_regex`, sorted; "default": the first
        `gradients/` tag among them, else the first, else None}.

        Raises:
            errors.InvalidArgumentError: `tags_regex` does not compile.
        """
        pattern = _compile(tags_regex, "tags")
        listing = self._list_histograms(ctx, experiment)
        matched = [tag for tag in sort_names({tag for tags in listing.values() for tag in tags})
                   if pattern.search(tag)]
        return {"tags": matched, "default": default_tag(matched)}

    def data_impl(self, ctx, experiment, tag: str, runs_regex: str = "",
                  step: str | None = None, color: str | None = None, panel: str = "none",
                  x: str = "auto", agg: str = "auto", view: str = "step") -> dict:
        """Returns the overlay of `tag` over the matching runs at `step` (see the module docstring).

        Raises:
            errors.InvalidArgumentError: a bad request; its message says what is wrong.
        """
        for name, value, choices in (("x", x, grouping.X_SCALES),
                                     ("agg", agg, grouping.AGGREGATES),
                                     ("view", view, grouping.VIEWS)):
            if value not in choices:
                raise errors.InvalidArgumentError(
                    f"{name}={value!r} is none of {', '.join(choices)}")
        if not tag:
            raise errors.InvalidArgumentError("tag is required, e.g. tag=gradients/dense_1/kernel")
        pattern = _compile(runs_regex, "runs")
        requested = _parse_step(step)
        listing = self._list_histograms(ctx, experiment)
        with_tag = [run for run, tags in listing.items() if tag in tags]
        if not with_tag:
            raise errors.InvalidArgumentError(f"no run has a histogram tag {tag!r}")
        runs = sort_names(run for run in with_tag if pattern.search(run))
        if not runs:
            raise errors.InvalidArgumentError(
                f"runs={runs_regex!r} matches none of the {len(with_tag)} runs with tag {tag!r}")
        layers, layer_names = layer_tags(tag, {other for run in runs for other in listing[run]})
        run_events = {run: data for run, data in self._read(ctx, experiment, runs, layers).items()
                      if tag in data.histograms}
        if not run_events:  # listed, but no datum could be read
            raise errors.InvalidArgumentError(f"no data for tag {tag!r} in the matching runs")
        logged = sorted({int(logged_step) for data in run_events.values()
                         for logged_step in data.histograms[tag].steps})
        if requested is None:
            requested = logged[-1]
        elif not logged[0] <= requested <= logged[-1]:
            raise errors.InvalidArgumentError(
                f"step {requested} is outside the logged steps of {tag!r}: "
                f"{logged[0]} to {logged[-1]}")
        table = compare.tabulate(run_events, [glob.escape(layer) for layer in layers], [requested])
        answer = _overlay(tag, logged, requested, layers, layer_names, table, run_events)
        hparams = grouping.hparams_by_run(self._sessions(ctx, experiment), list(run_events))
        names = sorted({name for values in hparams.values() for name in values})
        color, panel = _grouping_names(color, panel, names)
        grouped = grouping.arrange(answer["series"], run_events, tag, hparams, color, panel,
                                   x, agg, view)
        return jsonable.finite({**answer, **grouped, "hparams": names})

    def _sessions(self, ctx, experiment) -> dict:
        """Session run -> its hparams, from the HParams plugin's session_start_info summaries."""
        listing = self._data_provider.list_tensors(ctx, experiment_id=experiment,
                                                   plugin_name=hparams_metadata.PLUGIN_NAME)
        sessions = {}
        for run, tags in listing.items():
            series = tags.get(hparams_metadata.SESSION_START_INFO_TAG)
            found = series and grouping.session_hparams(series.plugin_content)
            if found is not None:
                sessions[run] = found
        return sessions

    def _list_histograms(self, ctx, experiment) -> dict:
        return self._data_provider.list_tensors(ctx, experiment_id=experiment,
                                                plugin_name=events.HISTOGRAMS_PLUGIN)

    def _read(self, ctx, experiment, runs: list[str], layers: list[str]) -> dict:
        """Run -> `EventData` with the runs' histograms of `layers` and their norm scalars."""
        histograms = self._data_provider.read_tensors(
            ctx, experiment_id=experiment, plugin_name=events.HISTOGRAMS_PLUGIN,
            downsample=ALL_DATA, run_tag_filter=provider.RunTagFilter(runs=runs, tags=layers))
        scalar_listing = self._data_provider.list_scalars(
            ctx, experiment_id=experiment, plugin_name=events.SCALARS_PLUGIN,
            run_tag_filter=provider.RunTagFilter(runs=runs))
        norm_tags = compare.scalar_tags_read(
            layers, {tag for tags in scalar_listing.values() for tag in tags})
        scalars = self._data_provider.read_scalars(
            ctx, experiment_id=experiment, plugin_name=events.SCALARS_PLUGIN,
            downsample=ALL_DATA, run_tag_filter=provider.RunTagFilter(runs=runs, tags=norm_tags),
        ) if norm_tags else {}
        return {run: _run_events(histograms.get(run, {}), scalars.get(run, {}), layers)
                for run in runs}


def _run_events(histograms: dict, scalars: dict, layers: list[str]) -> events.EventData:
    """One run's data-provider answers as the `EventData` that `compare.tabulate` reads."""
    by_tag = {tag: _to_histograms(histograms.get(tag, ())) for tag in layers}
    # Scalars in layer order: `tabulate` takes the first and last kernel's
    # gradient norm as the first and last layer's.
    return events.EventData(
        scalars={tag: _to_scalars(scalars[tag]) for tag in sort_names(scalars) if scalars[tag]},
        histograms={tag: data for tag, data in by_tag.items() if len(data.steps)},
        plugin_tags={})


def _overlay(tag, logged, step, layers, layer_names, table: compare.Table,
             run_events: dict) -> dict:
    """The `data` route's answer, from `tabulate`'s table and the histograms."""
    rows = {(row.tag, row.run): row for row in table.rows}
    ratios = {ratio.run: ratio for ratio in table.ratios}
    pairs = sorted({f"{ratio.first} / {ratio.last}" for ratio in table.ratios})
    series = []
    for run, data in run_events.items():
        row = rows[tag, run]
        used = row.steps[0]
        ratio = ratios[run].ratios[0] if run in ratios else None
        numbers = {"mean_abs": row.mean_abs[0], "std": row.std[0], "norm": row.norm_first,
                   "ratio": ratio}
        layer_rows = [rows.get((layer, run)) for layer in layers]
        series.append({
            "run": run,
            "step": used,
            "buckets": data.histograms[tag].at(used).tolist(),
            **numbers,
            # As `reproduce compare` prints them.
            "cells": {name: compare.format_number(value) for name, value in numbers.items()},
            "layers": {
                "norm": [layer_row.norm_first if layer_row else None for layer_row in layer_rows],
                "std": [layer_row.std[0] if layer_row else None for layer_row in layer_rows],
            },
        })
    return {
        "tag": tag,
        "symbol": compare.SYMBOLS.get(tag.split("/", 1)[0], "x"),
        "steps": logged,
        "step": step,
        "layers": layers,
        "layer_names": layer_names,
        "ratio_layers": pairs[0] if len(pairs) == 1 else "first / last layer",
        "series": series,
        "notes": table.notes,
    }


def _grouping_names(color, panel, names) -> tuple[str, str]:
    """`color` (default `activation` if a run has it, else `run`) and `panel`, checked."""
    if color is None:
        color = grouping.DEFAULT_COLOR if grouping.DEFAULT_COLOR in names else grouping.BY_RUN
    for option, value, other in (("color", color, grouping.BY_RUN),
                                 ("panel", panel, grouping.NO_PANEL)):
        if value != other and value not in names:
            raise errors.InvalidArgumentError(
                f"{option}={value!r} is no hyperparameter of these runs; choose {other!r} or "
                f"one of: {', '.join(names) or '(the runs log no hparams)'}")
    return color, panel


def sort_names(names) -> list[str]:
    """Sorted, numbers by value: `dense_2` before `dense_10`."""
    return sorted(names, key=_natural_key)


def _natural_key(name: str) -> list:
    # re.split with a group alternates text and digits, so like compares with like.
    return [int(part) if index % 2 else part for index, part in enumerate(_DIGITS.split(name))]


def default_tag(tags: list[str]) -> str | None:
    """The first `gradients/.../kernel` tag of `tags` (what users compare first), else the
    first `gradients/` tag, else the first tag, else None."""
    gradients = [tag for tag in tags if tag.startswith(f"{DEFAULT_KIND}/")]
    kernels = [tag for tag in gradients if tag.endswith("/kernel")]
    return (kernels or gradients or tags or [None])[0]


def layer_tags(tag: str, tags) -> tuple[list[str], list[str]]:
    """The tags of `tag`'s layers, input to output, and each layer's name.

    A tag's layers are the tags that differ from it in one path component
    only: `gradients/dense_1/kernel` ... `gradients/output/kernel`, or Keras's
    `dense/kernel/histogram` ... `dense_3/kernel/histogram`. The component is
    the one whose variants most often end in a number (`dense_1`, `act_2`),
    then the one with most variants; layers are sorted by it, numbers by value
    (the model's order for Keras's default layer names and ours). A tag of one
    component is its only layer.

    Example:

    >>> layer_tags("g/dense_1/kernel", ["g/dense_1/kernel", "g/output/kernel", "g/dense_1/bias"])
    (['g/dense_1/kernel', 'g/output/kernel'], ['dense_1', 'output'])
    """
    parts = tag.split("/")
    best, best_score, best_position = [parts], (0, 1), None
    candidates = [other.split("/") for other in {tag, *tags}
                  if other.count("/") == len(parts) - 1]
    for position in range(len(parts) if len(parts) > 1 else 0):
        family = [other for other in candidates if other[:position] == parts[:position]
                  and other[position + 1:] == parts[position + 1:]]
        score = (sum(bool(_ENDS_IN_NUMBER.search(other[position])) for other in family),
                 len(family))
        if len(family) > 1 and score > best_score:
            best, best_score, best_position = family, score, position
    if best_position is None:
        return [tag], [tag]
    best.sort(key=lambda other: _natural_key(other[best_position]))
    return ["/".join(other) for other in best], [other[best_position] for other in best]


def _compile(text: str, name: str) -> re.Pattern:
    try:
        return re.compile(text)
    except re.error as error:
        raise errors.InvalidArgumentError(
            f"{name}={text!r} is not a valid regular expression: {error}") from None


def _parse_step(text: str | None) -> int | None:
    if text is None or not text.strip():
        return None
    try:
        return int(text)
    except ValueError:
        raise errors.InvalidArgumentError(
            f"step must be a whole number, got {text!r}") from None


def _to_histograms(data) -> events.Histograms:
    # A histogram is k buckets [left, right, count]; anything else is not one.
    data = [datum for datum in data if np.size(datum.numpy) % 3 == 0]
    return events.Histograms(np.array([datum.step for datum in data], np.int64),
                             [np.asarray(datum.numpy, np.float64).reshape(-1, 3)
                              for datum in data])


def _to_scalars(data) -> events.Scalars:
    return events.Scalars(np.array([datum.step for datum in data], np.int64),
                          np.array([datum.value for datum in data], np.float64))
