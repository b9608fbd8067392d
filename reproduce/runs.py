"""What a run folder is: its name, its files, its completion marker, and how to find it.

A run folder `<logdir>/<experiment>/<dataset>/<activation>-d<depth>-w<width>-s<seed>`
holds everything needed to analyse the run again without retraining it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from pathlib import Path

from reproduce.config import NAME_CHARACTERS, RunConfig
from reproduce.errors import ConfigError, RunExistsError, RunNotFoundError

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
PROBE_FILE = "probe.npz"
MARKER_FILE = "COMPLETE"  # written last: its presence means the run finished
TRAIN_DIR = "train"  # Keras's TensorBoard callback layout
VALIDATION_DIR = "validation"

STATUS_COMPLETE = "complete"
STATUS_DIVERGED = "diverged"

# Fields that change the result but are not in the base name get a suffix when
# they differ from the default, so different configurations never share a folder.
NAME_SUFFIXES = {
    "initializer": "init",
    "optimizer": "opt",
    "learning_rate": "lr",
    "batch_size": "bs",
    "epochs": "ep",
    "samples": "n",
    "noise": "noise",
    "validation_fraction": "val",
    "mixed_precision": "fp16",
}


def run_name(config: RunConfig) -> str:
    """Returns `<dataset>/<activation>-d<depth>-w<width>-s<seed>[-key=value...]`."""
    parts = [f"{config.activation}-d{config.depth}-w{config.width}-s{config.seed}"]
    default = RunConfig()
    for field, short in NAME_SUFFIXES.items():
        value = getattr(config, field)
        if value != getattr(default, field):
            parts.append(f"{short}={_format_value(value)}")
    name = "-".join(parts)
    assert set(name) <= set(NAME_CHARACTERS), name
    return f"{config.dataset}/{name}"


def group_name(config: RunConfig) -> str:
    """Returns the run name without its seed: the runs of one configuration share it."""
    dataset, name = run_name(config).split("/")
    return f"{dataset}/" + name.replace(f"-s{config.seed}", "", 1)


def _format_value(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:g}".replace("+", "")  # 1e+06 -> 1e06
    return str(value).lower()


def experiment_dir(logdir: str | Path, experiment: str) -> Path:
    return Path(logdir) / experiment


def experiment_dir_of(run_path: str | Path) -> Path:
    """Returns the experiment folder holding the run folder `run_path`."""
    return Path(run_path).parent.parent  # <experiment>/<dataset>/<run>


def run_dir(config: RunConfig, logdir: str | Path) -> Path:
    """Returns the folder of `config`'s run under the log root `logdir`."""
    return experiment_dir(logdir, config.experiment) / run_name(config)


def is_complete(path: str | Path) -> bool:
    """Whether the run in `path` finished (completed or diverged)."""
    return (Path(path) / MARKER_FILE).is_file()


def read_marker(path: str | Path) -> dict:
    """Returns the completion marker's contents (status, wall time, final metrics)."""
    return json.loads((Path(path) / MARKER_FILE).read_text())


def write_marker(path: str | Path, info: dict) -> None:
    """Writes the completion marker; call it after every other file is written."""
    (Path(path) / MARKER_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


def check_writable(logdir: str | Path) -> None:
    """Checks that `logdir` can be created and written, without creating it.

    Raises:
        ConfigError: a part of the path is a file, or no file can be created.
    """
    path = Path(logdir).absolute()
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"log dir {str(logdir)!r} is not writable: {existing} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ConfigError(
            f"log dir {str(logdir)!r} is not writable: {error.strerror or error}"
        ) from None


def check_not_complete(path: str | Path, overwrite: bool) -> None:
    """Raises RunExistsError if the run in `path` is complete and `overwrite` is false."""
    if is_complete(path) and not overwrite:
        raise RunExistsError(f"run {path} is already complete; pass --overwrite to train it again")


def prepare_run_dir(config: RunConfig, logdir: str | Path, overwrite: bool = False) -> Path:
    """Creates an empty folder for `config`'s run and returns it.

    A completed run is only replaced when `overwrite` is true; a folder left by
    a crashed run (no marker) is replaced with a warning.

    Raises:
        RunExistsError: the run is complete and `overwrite` is false.
    """
    path = run_dir(config, logdir)
    check_not_complete(path, overwrite)
    if is_complete(path):
        shutil.rmtree(path)
    elif path.exists():
        warnings.warn(f"replacing incomplete run {path} (no {MARKER_FILE} marker)", stacklevel=2)
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def find_runs(root: str | Path) -> list[Path]:
    """Returns every run folder (one holding `config.json`) under `root`, sorted.

    Raises:
        RunNotFoundError: `root` does not exist.
    """
    root = Path(root)
    if not root.is_dir():
        raise RunNotFoundError(f"no such folder: {root}")
    if (root / CONFIG_FILE).is_file():
        return [root]
    return sorted(path.parent for path in root.rglob(CONFIG_FILE))


def load_config(path: str | Path) -> RunConfig:
    """Reads the `config.json` of the run in `path`."""
    return RunConfig.load(Path(path) / CONFIG_FILE)


def find_completed_runs(experiment_dir: str | Path) -> list[Path]:
    """Returns the completed (or diverged) run folders under `experiment_dir`, sorted.

    Runs without a completion marker are skipped with a warning.

    Raises:
        RunNotFoundError: the folder does not exist or holds no completed run.
    """
    completed = []
    for path in find_runs(experiment_dir):
        if is_complete(path):
            completed.append(path)
        else:
            warnings.warn(f"skipping incomplete run {path} (no {MARKER_FILE} marker)",
                          stacklevel=2)
    if not completed:
        raise RunNotFoundError(f"no completed runs in {experiment_dir}")
    return completed
