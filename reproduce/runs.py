"""What a run folder is: its name, its files, its completion marker, and how to find it.

A run folder `<logdir>/<experiment>/<dataset>/<activation>-d<depth>-w<width>-s<seed>`
holds everything needed to analyse the run again without retraining it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path

from reproduce.config import NAME_CHARACTERS, RunConfig
from reproduce.errors import (
    ConfigError, ReproduceError, RunBusyError, RunExistsError, RunNotFoundError)

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
    """Returns the completion marker's contents (status, wall time, final metrics).

    Raises:
        RunNotFoundError: the marker is unreadable or not a JSON object; the message names it.
    """
    marker = Path(path) / MARKER_FILE
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError) as error:  # ValueError: bad JSON or not UTF-8
        raise RunNotFoundError(f"unreadable {marker}: {error}") from None
    if not isinstance(info, dict):
        raise RunNotFoundError(f"unreadable {marker}: not a JSON object")
    return info


def write_marker(path: str | Path, info: dict) -> None:
    """Writes the completion marker; call it after every other file is written.

    The marker appears whole or not at all (written aside, then renamed), so
    a run killed while writing it is simply incomplete.
    """
    partial = Path(path) / (MARKER_FILE + ".partial")
    partial.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    os.replace(partial, Path(path) / MARKER_FILE)


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


def lock_file(path: str | Path) -> Path:
    """The lock file of the run folder `path`: a hidden file beside it, never deleted.

    Deleting a lock file would let two processes lock two different files of
    the same name, so it stays (it is empty but for its owner's pid).
    """
    path = Path(path)
    return path.parent / f".{path.name}.lock"


# The run folders this process has locked, and the open lock files that hold the locks.
_held_locks: dict[Path, object] = {}


@contextlib.contextmanager
def write_lock(path: str | Path, wait: bool = False):
    """Holds the OS lock (`flock`) that lets one process at a time write the folder `path`.

    Used for run folders, and for an experiment folder's own summaries. The
    kernel releases the lock when its owner exits, however it dies, so a run
    whose trainer was killed is free again. Re-entering in the process that
    holds the lock is a no-op.

    Args:
        path: the run folder (it need not exist).
        wait: block until the lock is free instead of raising.

    Raises:
        RunBusyError: another process holds the lock and `wait` is false.
    """
    path = Path(path).absolute()
    if path in _held_locks:
        yield
        return
    lock_path = lock_file(path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock_path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            handle.seek(0)
            owner = handle.read().strip()
            raise RunBusyError(
                f"run {path.relative_to(path.parent.parent)} is being trained by "
                f"another process{f' (pid {owner})' if owner.isdigit() else ''}; "
                f"wait for it to finish") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        _held_locks[path] = handle
        try:
            yield
        finally:
            del _held_locks[path]
    finally:
        handle.close()  # releases the lock


def discard_incomplete(path: str | Path) -> bool:
    """Removes the run folder `path` if it has no completion marker; returns whether it did.

    A folder that another process is training is left alone.
    """
    path = Path(path)
    if not path.exists() or is_complete(path):
        return False
    try:
        with write_lock(path):
            if is_complete(path):
                return False
            shutil.rmtree(path, ignore_errors=True)
    except RunBusyError:
        return False
    return True


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


def load_config(path: str | Path) -> RunConfig:
    """Reads the `config.json` of the run in `path`.

    Raises:
        ConfigError: the file is unreadable or not a valid config; the message names it.
    """
    config_file = Path(path) / CONFIG_FILE
    try:
        return RunConfig.load(config_file)
    except (OSError, ValueError) as error:  # ConfigError is a ValueError, as is bad UTF-8
        raise ConfigError(f"unreadable {config_file}: {error}") from None


def load_model(path: str | Path):
    """Loads the final model of the run in `path`, uncompiled, in Keras's safe mode.

    Raises:
        RunNotFoundError: the model file is missing or does not load; the message names it.
    """
    import keras

    model_file = Path(path) / MODEL_FILE
    try:
        return keras.saving.load_model(model_file, compile=False, safe_mode=True)
    except Exception as error:  # noqa: BLE001 - a damaged file raises many kinds of error
        if not model_file.is_file():
            reason = "missing"
        elif not zipfile.is_zipfile(model_file):
            reason = "not a .keras zip archive (truncated or overwritten?)"
        else:
            reason = f"{type(error).__name__}: {error}"
        raise RunNotFoundError(f"unreadable {model_file}: {reason}") from None


def find_completed_runs(experiment_dir: str | Path) -> list[Path]:
    """Returns the completed (or diverged) run folders under `experiment_dir`, sorted.

    Runs without a completion marker are skipped with a warning.

    Raises:
        RunNotFoundError: the folder does not exist or holds no completed run.
    """
    completed = []
    for path in find_runs(experiment_dir):
        if not is_complete(path):
            warnings.warn(f"skipping incomplete run {path} (no {MARKER_FILE} marker)",
                          stacklevel=2)
            continue
        try:
            load_config(path)
            read_marker(path)
        except ReproduceError as error:
            warnings.warn(f"skipping run {path}: {error}", stacklevel=2)
            continue
        completed.append(path)
    if not completed:
        raise RunNotFoundError(f"no completed runs in {experiment_dir}")
    return completed
