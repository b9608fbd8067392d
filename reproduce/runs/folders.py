"""What a run folder is called and holds: its name, its files, and how to find runs.

A run folder `<logdir>/<experiment>/<dataset>/<activation>-d<depth>-w<width>-s<seed>`
holds everything needed to analyse the run again without retraining it.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

from reproduce.config import NAME_CHARACTERS, RunConfig
from reproduce.errors import ConfigError, RunNotFoundError

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
INITIAL_WEIGHTS_FILE = "initial.weights.h5"  # the weights at step 0, before any update
HISTORY_FILE = "history.json"
PROBE_FILE = "probe.npz"
MARKER_FILE = "COMPLETE"  # written last: its presence means the run finished
TRAIN_DIR = "train"  # Keras's TensorBoard callback layout
VALIDATION_DIR = "validation"

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
    "init_scale": "iscale",
    "passes_per_epoch": "passes",
    "use_bias": "bias",
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


def find_runs(root: str | Path) -> list[Path]:
    """Returns every run folder (one holding `config.json`) under `root`, sorted.

    Raises:
        RunNotFoundError: `root` does not exist.
    """
    root = Path(root)
    if not root.is_dir():
        raise RunNotFoundError(f"{'not a' if root.exists() else 'no such'} folder: {root}")
    for marker in root.rglob(MARKER_FILE):
        if not (marker.parent / CONFIG_FILE).is_file():
            warnings.warn(f"skipping run {marker.parent}: no {CONFIG_FILE}", stacklevel=2)
    if (root / CONFIG_FILE).is_file():
        return [root]
    return sorted(path.parent for path in root.rglob(CONFIG_FILE))
