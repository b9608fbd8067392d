"""What a run folder is: its name, its files, its completion marker, and how to find it.

A run folder `<logdir>/<experiment>/<dataset>/<activation>-d<depth>-w<width>-s<seed>`
holds everything needed to analyse the run again without retraining it. `Run`
is the one record of a run folder that the report, the figures, the comparison
and the TensorBoard summaries read it through; `Marker` is the one definition
of the completion marker, written by training and read by everyone else.

Example:

```python
for run in load_runs("logs/article"):
    print(run.name, run.status, run.marker.final["val_accuracy"])
    model = run.load_model()
```
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import errno
import fcntl
import functools
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
INITIAL_WEIGHTS_FILE = "initial.weights.h5"  # the weights at step 0, before any update
HISTORY_FILE = "history.json"
PROBE_FILE = "probe.npz"
MARKER_FILE = "COMPLETE"  # written last: its presence means the run finished
TRAIN_DIR = "train"  # Keras's TensorBoard callback layout
VALIDATION_DIR = "validation"


class RunStatus(str, enum.Enum):
    """Where a run folder stands; the marker holds COMPLETE or DIVERGED."""

    COMPLETE = "complete"  # trained to the end
    DIVERGED = "diverged"  # stopped at a NaN or infinite loss; finished all the same
    INCOMPLETE = "incomplete"  # no marker: still training, crashed or killed

    def __str__(self) -> str:
        return self.value


STATUS_COMPLETE = RunStatus.COMPLETE.value
STATUS_DIVERGED = RunStatus.DIVERGED.value

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


def is_complete(path: str | Path) -> bool:
    """Whether the run in `path` finished (completed or diverged)."""
    return (Path(path) / MARKER_FILE).is_file()


@dataclasses.dataclass(frozen=True)
class Marker:
    """The completion marker `COMPLETE`: how a run ended. Only `status` is required."""

    status: RunStatus  # COMPLETE or DIVERGED
    steps: int | None = None  # optimizer steps taken
    epochs: int | None = None  # epochs run
    steps_per_epoch: int | None = None  # batches per training epoch
    wall_time_s: float | None = None  # seconds from start to the marker
    final: dict[str, float] = dataclasses.field(default_factory=dict)  # last epoch's metrics
    devices: list[str] = dataclasses.field(default_factory=list)  # the chief's devices
    replicas: int | None = None  # replicas in sync
    workers: int | None = None  # worker processes
    diverged_at_step: int | None = None  # first step with a non-finite batch loss
    data_sha256: str | None = None  # `datasets.fingerprint` of the split trained on

    @property
    def epoch_steps(self) -> float | None:
        """Optimizer steps per epoch: recorded, else steps / epochs; None when unknown."""
        if self.steps_per_epoch:
            return self.steps_per_epoch
        if self.steps is not None and self.epochs:
            return self.steps / self.epochs
        return None

    def to_dict(self) -> dict:
        """The marker as JSON-ready values; optional fields that are None are left out."""
        values = dataclasses.asdict(self)
        values["status"] = self.status.value
        return {key: value for key, value in values.items()
                if value is not None or key not in _OPTIONAL_MARKER_FIELDS}

    @classmethod
    def from_dict(cls, values, source: str = MARKER_FILE) -> "Marker":
        """Reads a marker's JSON object, checking each field's type.

        Raises:
            RunNotFoundError: not an object, no valid status, or a field of the
                wrong type; the message names `source`.
        """
        def fail(reason: str):
            raise RunNotFoundError(f"unreadable {source}: {reason}")

        if not isinstance(values, dict):
            fail("not a JSON object")
        fields = {field.name for field in dataclasses.fields(cls)}
        known = {key: value for key, value in values.items() if key in fields}
        if known.get("status") not in (STATUS_COMPLETE, STATUS_DIVERGED):
            fail(f"status must be {STATUS_COMPLETE!r} or {STATUS_DIVERGED!r}, "
                 f"got {known.get('status')!r}")
        known["status"] = RunStatus(known["status"])
        for key, kind in _MARKER_TYPES.items():
            if known.get(key) is not None and not _is_a(known[key], kind):
                fail(f"{key} must be of type {kind.__name__}, got {known[key]!r}")
        final = known.get("final", {})
        if not (isinstance(final, dict) and all(_is_a(value, float) for value in final.values())):
            fail(f"final must map metric names to numbers, got {final!r}")
        return cls(**known)


_OPTIONAL_MARKER_FIELDS = ("diverged_at_step", "data_sha256")
_MARKER_TYPES = {"steps": int, "epochs": int, "steps_per_epoch": int, "wall_time_s": float,
                 "replicas": int, "workers": int, "diverged_at_step": int, "data_sha256": str,
                 "devices": list}


def _is_a(value, kind) -> bool:
    if isinstance(value, bool):
        return False
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


def read_marker(path: str | Path) -> Marker:
    """Returns the completion marker of the run in `path`.

    Raises:
        RunNotFoundError: the marker is missing, unreadable or malformed; the message names it.
    """
    marker = Path(path) / MARKER_FILE
    try:
        values = json.loads(marker.read_text())
    except (OSError, ValueError) as error:  # ValueError: bad JSON or not UTF-8
        raise RunNotFoundError(f"unreadable {marker}: {error}") from None
    return Marker.from_dict(values, str(marker))


def write_marker(path: str | Path, marker: Marker) -> None:
    """Writes the completion marker; call it after every other file is written.

    The marker appears whole or not at all (written aside, then renamed), so
    a run killed while writing it is simply incomplete.
    """
    partial = Path(path) / (MARKER_FILE + ".partial")
    partial.write_text(json.dumps(marker.to_dict(), indent=2, sort_keys=True) + "\n")
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


def check_not_busy(path: str | Path) -> None:
    """Fails fast (before TensorFlow loads) when another process trains the run in `path`.

    Training takes the lock itself; this only spares a refused command the wait.

    Raises:
        RunBusyError: another process holds the run's lock.
    """
    with write_lock(path):
        pass


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


def load_model(path: str | Path, initial: bool = False, reuse: dict | None = None):
    """Loads the final model of the run in `path`, uncompiled, in Keras's safe mode.

    Args:
        path: the run folder.
        initial: load the weights at step 0 (`INITIAL_WEIGHTS_FILE`) into it instead.
        reuse: a dict kept between calls: a model it holds with the same
            config is loaded into and returned again, its weights replaced
            (`keras_files.load_model`), saving most of the load.

    Raises:
        RunNotFoundError: the model or weights file is missing or does not load; the
            message names it.
    """
    from reproduce import keras_files

    model_file = Path(path) / MODEL_FILE
    try:
        model = keras_files.load_model(model_file, reuse)
    except Exception as error:  # noqa: BLE001 - a damaged file raises many kinds of error
        if not model_file.is_file():
            reason = "missing"
        elif not zipfile.is_zipfile(model_file):
            reason = "not a .keras zip archive (truncated or overwritten?)"
        else:
            reason = f"{type(error).__name__}: {error}"
        raise RunNotFoundError(f"unreadable {model_file}: {reason}") from None
    if initial:
        load_initial_weights(model, path)
    return model


def load_initial_weights(model, path: str | Path) -> None:
    """Sets `model` (the run's network, e.g. from `load_model`) to its weights at step 0.

    Raises:
        RunNotFoundError: the weights file is missing or does not load into `model`.
    """
    weights_file = Path(path) / INITIAL_WEIGHTS_FILE
    if not weights_file.is_file():
        raise RunNotFoundError(f"no initial weights in {path} ({INITIAL_WEIGHTS_FILE} is "
                               f"written by training since the data fingerprint was added)")
    from reproduce import keras_files

    try:
        keras_files.load_weights(model, weights_file)
    except Exception as error:  # noqa: BLE001 - a damaged file raises many kinds of error
        raise RunNotFoundError(
            f"unreadable {weights_file}: {type(error).__name__}: {error}") from None


def load_probe(path: str | Path):
    """The probe batch (x, y) of the run in `path`.

    Raises:
        RunNotFoundError: the probe file is missing or damaged; the message names it.
    """
    import numpy as np

    probe_file = Path(path) / PROBE_FILE
    try:
        with np.load(probe_file, allow_pickle=False) as stored:
            return stored["x"], stored["y"]
    except Exception as error:  # noqa: BLE001 - a damaged archive raises many kinds of error
        raise RunNotFoundError(
            f"unreadable {probe_file}: {type(error).__name__}: {error}") from None


def load_history(path: str | Path) -> dict[str, list[float]]:
    """Keras's `History.history` of the run in `path`: metric -> one value per epoch.

    A missing file gives an empty dict.

    Raises:
        RunNotFoundError: the file is not a JSON object of lists of numbers; the message
            names it.
    """
    history_file = Path(path) / HISTORY_FILE
    try:
        history = json.loads(history_file.read_text())
        if not isinstance(history, dict):
            raise ValueError("not a JSON object")
        for name, values in history.items():
            if not isinstance(values, list) or not all(_is_a(value, float) for value in values):
                raise ValueError(f"{name} is not a list of numbers")
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:  # ValueError: bad JSON or not UTF-8, or shape
        raise RunNotFoundError(f"unreadable {history_file}: {error}") from None
    return history


@dataclasses.dataclass(frozen=True)
class Run:
    """One run folder: its config and marker, read on first use, and loaders for the rest.

    Reading a damaged file raises the typed error naming it (`ConfigError`,
    `RunNotFoundError`) when the property or loader is used, so a reader can
    leave out only what it needed.
    """

    path: Path

    @functools.cached_property
    def config(self) -> RunConfig:
        return load_config(self.path)

    @functools.cached_property
    def marker(self) -> Marker | None:
        """The completion marker; None when the run has not finished."""
        return read_marker(self.path) if is_complete(self.path) else None

    @property
    def status(self) -> RunStatus:
        return self.marker.status if self.marker is not None else RunStatus.INCOMPLETE

    @property
    def finished(self) -> bool:
        """Whether the run ended, completed or diverged."""
        return self.marker is not None

    @property
    def usable(self) -> bool:
        """Whether its figures count in statistics: completed, not diverged."""
        return self.status is RunStatus.COMPLETE

    @property
    def name(self) -> str:
        return run_name(self.config)

    @property
    def group(self) -> str:
        return group_name(self.config)

    @property
    def final(self) -> dict[str, float]:
        """The last epoch's metrics from the marker; empty when unfinished."""
        return dict(self.marker.final) if self.marker is not None else {}

    @functools.cached_property
    def events(self):
        """The run's `train/` and `validation/` events (`events.RunEvents`), kept once read."""
        return self.read_events()

    def read_events(self):
        """Reads the run's `train/` and `validation/` events (`events.RunEvents`) afresh."""
        from reproduce import events

        return events.read_run(self.path)

    def __getstate__(self) -> dict:
        # Sent to worker processes without the events it may hold.
        return {key: value for key, value in self.__dict__.items() if key != "events"}

    def load_model(self, initial: bool = False, reuse: dict | None = None):
        """See `load_model`."""
        return load_model(self.path, initial, reuse)

    def load_initial_weights(self, model) -> None:
        """See `load_initial_weights`."""
        load_initial_weights(model, self.path)

    def load_probe(self):
        """See `load_probe`."""
        return load_probe(self.path)

    def load_history(self) -> dict[str, list[float]]:
        """See `load_history`."""
        return load_history(self.path)

    def load_data(self, mnist_path=None):
        """The run's split regenerated from its config, checked against its fingerprint.

        Raises:
            DataError: the data cannot be built here.
            DataMismatchError: they differ from what the run trained on.
        """
        from reproduce import datasets

        expected = self.marker.data_sha256 if self.marker is not None else None
        return datasets.load_checked(self.config, expected, mnist_path)


def load_runs(root: str | Path, include_unfinished: bool = False) -> list[Run]:
    """The runs under `root` whose config and marker read, sorted by folder.

    A run whose config or marker does not read is left out with a warning
    naming the file; so, unless `include_unfinished`, is a run without marker.

    Raises:
        RunNotFoundError: `root` is not a folder, or holds no finished run.
    """
    found = []
    for path in find_runs(root):
        run = Run(path)
        try:
            run.config, run.marker  # noqa: B018 - read now, to leave out what does not read
        except ReproduceError as error:
            warnings.warn(f"skipping run {path}: {error}", stacklevel=2)
            continue
        if not (run.finished or include_unfinished):
            warnings.warn(f"skipping incomplete run {path} (no {MARKER_FILE} marker)",
                          stacklevel=2)
            continue
        found.append(run)
    if not any(run.finished for run in found):
        held = (f"{len(found)} run folder(s), none with a {MARKER_FILE} marker" if found
                else f"no run folder (one holding {CONFIG_FILE}) below it")
        raise RunNotFoundError(f"no completed runs in {root}: {held}; train some first, "
                               f"e.g. `make reproduce`")
    return found
