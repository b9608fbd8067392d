"""What we write for TensorBoard's tabs: HParams, Custom Scalars, and the figures as Images.

`write_run_hparams(run_dir, config, metrics)` and
`write_experiment_summaries(experiment_dir, configs)` make the HParams tab
list every run with its hyperparameters and final validation loss and
accuracy, and the Custom Scalars tab overlay every run's losses and global
gradient norm. The layout they write:

    <experiment>/hparams_config/events...   the hparams and their domains, the metric list
    <experiment>/custom_scalars/events...   the custom-scalars layout
    <run>/events.out.tfevents.hparams.v2    the run's hparams (and `metrics`, as scalars)

The HParams plugin takes the run folder holding a run's hparams as the
session, and looks its metrics up in the session's sub-runs: `epoch_loss` in
`<run>/validation` is the metric (group `validation`, tag `epoch_loss`). So the
run's hparams live in the run folder itself, in a file of a fixed name that a
rewrite replaces; the experiment-wide summaries each get a folder of their own
that a rewrite empties first. Both writers are idempotent.

`write_image_summaries(pngs, figures_dir)` puts an experiment's figures in the
Images tab.

Example:

```python
for config in sweep:
    result = train(config, "logs")
    write_run_hparams(result.run_dir, config, {"wall_time_s": result.wall_time})
write_experiment_summaries("logs/article", sweep)
```
"""

from __future__ import annotations

import math
import re
import shutil
import struct
from pathlib import Path

from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import summary as custom_scalar_summary
# `hparams.api` re-exports these, and also a Keras callback that imports TensorFlow.
from tensorboard.plugins.hparams import summary_v2 as hp
from tensorboard.plugins.scalar import summary_v2 as scalar_summary

from callbacks import tags
from reproduce import runs
from reproduce.config import RunConfig
from reproduce.errors import ConfigError, RunNotFoundError
from reproduce.runs import events

# "tfevents" in a name makes TensorBoard read the file.
RUN_HPARAMS_FILE = "events.out.tfevents.hparams.v2"
SUMMARY_FILE = "events.out.tfevents.summary.v2"  # in each experiment-wide folder
HPARAMS_CONFIG_DIR = "hparams_config"
CUSTOM_SCALARS_DIR = "custom_scalars"
HPARAM_FIELDS = ("dataset", "activation", "depth", "width", "initializer", "seed",
                 "learning_rate", "optimizer", "batch_size", "epochs")
# (sub-run, tag, display name): the last value of each is the run's metric.
HPARAM_METRICS = (
    (runs.VALIDATION_DIR, tags.EPOCH_LOSS, "final validation loss"),
    (runs.VALIDATION_DIR, tags.EPOCH_ACCURACY, "final validation accuracy"),
)
# (tag, chart title): each chart overlays the tag of every run.
CUSTOM_SCALAR_CHARTS = (
    (tags.BATCH_LOSS, "batch loss, every optimizer step"),
    (tags.EPOCH_LOSS, "epoch loss, training and validation"),
    (tags.EPOCH_ACCURACY, "epoch accuracy, training and validation"),
    (tags.GLOBAL_GRADIENT_NORM, "global gradient norm on the probe batch"),
)
CUSTOM_SCALARS_CATEGORY = "every run"


def select_hparams(config: RunConfig) -> dict:
    """The hyperparameters the HParams tab shows for `config`'s run."""
    return {field: getattr(config, field) for field in HPARAM_FIELDS}


def write_run_hparams(run_dir: str | Path, config: RunConfig, metrics: dict | None = None) -> Path:
    """Records a run's hyperparameters for TensorBoard's HParams tab.

    The run is listed with `HPARAM_FIELDS` and, as metrics, the last
    validation `epoch_loss` and `epoch_accuracy` its event files already hold.
    Calling it again replaces what it wrote.

    Args:
        run_dir: the run folder.
        config: the run's configuration.
        metrics: further values to list beside those, name -> number (e.g.
            `{"wall_time_s": 5.8}`), written as scalars in the run folder at
            the run's last step; `write_experiment_summaries` lists them.

    Returns:
        The event file written.

    Raises:
        RunNotFoundError: `run_dir` is not a folder.
        ConfigError: a metric value is not a finite number.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunNotFoundError(f"no such run folder: {run_dir}")
    metrics = dict(metrics or {})
    for name, value in metrics.items():
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not (is_number and math.isfinite(value)):
            raise ConfigError(f"metric {name!r} must be a finite number, got {value!r}")
    marker = runs.Run(run_dir).marker
    step = (marker.steps or 0) if marker is not None else 0
    summaries = [(0, hp.hparams_pb(select_hparams(config), trial_id=runs.run_name(config)))]
    summaries += [(step, scalar_summary.scalar_pb(name, float(value)))
                  for name, value in sorted(metrics.items())]
    path = run_dir / RUN_HPARAMS_FILE
    _write_event_file(path, summaries)
    return path


def write_experiment_summaries(experiment_dir: str | Path, configs) -> list[Path]:
    """Writes the sweep's HParams configuration and custom-scalars layout.

    The HParams configuration gives each of `HPARAM_FIELDS` its values over
    `configs` as domain, and lists the metrics: final validation loss and
    accuracy, then every `metrics` name `write_run_hparams` recorded in the
    runs under `experiment_dir`. The layout has one chart per
    `CUSTOM_SCALAR_CHARTS` tag, overlaying every run. Calling it again replaces
    both. Builds the layout with `custom_scalar.summary.pb`, which imports
    TensorFlow.

    Args:
        experiment_dir: the experiment folder, e.g. `logs/article`.
        configs: the sweep's `RunConfig`s.

    Returns:
        The two event files written.

    Raises:
        ConfigError: `configs` is empty.
    """
    experiment_dir = Path(experiment_dir)
    configs = list(configs)
    if not configs:
        raise ConfigError("write_experiment_summaries needs at least one config")
    hparams = [hp.HParam(field, hp.Discrete(sorted({getattr(config, field)
                                                    for config in configs})))
               for field in HPARAM_FIELDS]
    metrics = [hp.Metric(tag, group=group, display_name=name, dataset_type=hp.Metric.VALIDATION)
               for group, tag, name in HPARAM_METRICS]
    metrics += [hp.Metric(tag) for tag in _recorded_metric_names(experiment_dir)]
    config_path = _replace_folder(experiment_dir / HPARAMS_CONFIG_DIR) / SUMMARY_FILE
    _write_event_file(config_path, [(0, hp.hparams_config_pb(hparams, metrics))])

    layout = layout_pb2.Layout(category=[layout_pb2.Category(
        title=CUSTOM_SCALARS_CATEGORY,
        chart=[layout_pb2.Chart(title=title, multiline=layout_pb2.MultilineChartContent(
            tag=[f"^{re.escape(tag)}$"])) for tag, title in CUSTOM_SCALAR_CHARTS],
    )])
    # `pb` builds TensorFlow's Summary class; the bytes are the same message.
    layout_summary = summary_pb2.Summary.FromString(
        custom_scalar_summary.pb(layout).SerializeToString())
    layout_path = _replace_folder(experiment_dir / CUSTOM_SCALARS_DIR) / SUMMARY_FILE
    _write_event_file(layout_path, [(0, layout_summary)])
    return [config_path, layout_path]


def _recorded_metric_names(experiment_dir: Path) -> list[str]:
    """The scalar tags `write_run_hparams` wrote into the runs' folders, sorted."""
    names = set()
    for run_dir in runs.find_runs(experiment_dir) if experiment_dir.is_dir() else []:
        names.update(events.read_events(run_dir).scalars)  # the run folder's own file
    return sorted(names)


def _replace_folder(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def _write_event_file(path: Path, summaries) -> None:
    """Writes (step, Summary) pairs as an event file, replacing `path` at once."""
    from callbacks.event_writer import write_event_file  # loads TensorFlow: not for `launch`

    write_event_file(path, summaries)


def figure_tag(png: Path, figures_dir: Path) -> str:
    """Returns the image tag of a figure: its path under `figures_dir` without `.png`."""
    return png.relative_to(figures_dir).with_suffix("").as_posix()


def write_image_summaries(pngs: list[Path], figures_dir: Path) -> None:
    """Writes each PNG as an image summary at step 0 into the event folder `figures_dir`.

    Older event files there are deleted first, so plotting again replaces the
    images in TensorBoard instead of adding a second copy of each.
    """
    from callbacks.event_writer import EventWriter

    for old in events.event_files(figures_dir):
        old.unlink()
    writer = EventWriter(figures_dir)
    for png in pngs:
        writer.write_summary(0, image_summary(figure_tag(png, figures_dir), png.read_bytes()))
    writer.close()


def image_summary(tag: str, png: bytes):
    """A TensorBoard image summary of one PNG, as `tf.summary.image` writes it.

    The tensor is TensorBoard's image layout: width, height, then the encoded image.
    """
    from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorboard.plugins.image import metadata as image_metadata

    width, height = struct.unpack(">II", png[16:24])  # the PNG's IHDR chunk
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=3)]),
        string_val=[str(width).encode(), str(height).encode(), png])
    metadata = image_metadata.create_summary_metadata(display_name=None, description=None)
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(
        tag=tag, metadata=metadata, tensor=tensor)])
