"""TensorBoard for the run folders: a launcher that samples nothing away, and
the HParams and custom-scalars summaries of a sweep.

`launch(logdir)` starts TensorBoard on 127.0.0.1 keeping every scalar,
histogram and image (by default it keeps 1000 scalars, 500 histograms and 10
images per tag, sampled at random).

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

Example:

```python
for config in sweep:
    result = train(config, "logs")
    write_run_hparams(result.run_dir, config, {"wall_time_s": result.wall_time})
write_experiment_summaries("logs/article", sweep)
launch("logs")
```
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import summary as custom_scalar_summary
# `hparams.api` re-exports these, and also a Keras callback that imports TensorFlow.
from tensorboard.plugins.hparams import summary_v2 as hp
from tensorboard.plugins.scalar import summary_v2 as scalar_summary

from callbacks import tags
from reproduce import events, runs
from reproduce.config import RunConfig
from reproduce.errors import ConfigError, RunNotFoundError

DEFAULT_PORT = 6006
DEFAULT_HOST = "127.0.0.1"  # loopback only: TensorBoard has no authentication
MAX_PORT = 65535
STOP_SECONDS = 10  # for TensorBoard to exit after Ctrl+C, before it is killed
# More samples per tag than any run logs, so TensorBoard samples nothing away.
# Not 0: its help says 0 keeps every sample, but the plugins then serve none
# (tensorflow/tensorboard#5550; seen here for scalars with TensorBoard 2.21).
KEEP_ALL_SAMPLES = 10**9
SAMPLES_PER_PLUGIN = ",".join(f"{plugin}={KEEP_ALL_SAMPLES}"
                              for plugin in ("scalars", "histograms", "images"))

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


def build_command(logdir: str | Path, port: int = DEFAULT_PORT,
                  host: str = DEFAULT_HOST) -> list[str]:
    """Returns the command line that starts TensorBoard on `logdir` with nothing sampled away."""
    return [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir),
            "--host", host, "--port", str(port), "--samples_per_plugin", SAMPLES_PER_PLUGIN]


def launch(logdir: str | Path, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST) -> int:
    """Runs TensorBoard on `logdir` until it exits (Ctrl+C); returns its exit status.

    Raises:
        ConfigError: `port` is not in 1-65535, or `host` is empty.
        RunNotFoundError: `logdir` is not a folder.
    """
    if not 1 <= port <= MAX_PORT:
        raise ConfigError(f"port must be between 1 and {MAX_PORT}, got {port}")
    if not host.strip():
        raise ConfigError(f"host must be an address such as {DEFAULT_HOST}, got {host!r}")
    if not Path(logdir).is_dir():
        raise RunNotFoundError(f"no such log folder: {logdir}")
    print(f"TensorBoard on {logdir} at http://{host}:{port}/ (Ctrl+C to stop)", flush=True)
    process = subprocess.Popen(build_command(logdir, port, host))
    try:
        return process.wait()
    except KeyboardInterrupt:
        # Ctrl+C in a terminal reaches TensorBoard as well, but a signal sent to
        # this process alone does not: stop it either way.
        process.terminate()
        try:
            return process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()


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
