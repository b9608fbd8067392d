"""Who writes a run folder: one process at a time (an OS lock), never over a completed run.

The lock also guards an experiment folder's own summaries. Finished runs are
only replaced on request; unfinished folders are replaced or removed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import warnings
from pathlib import Path

from reproduce.config import RunConfig
from reproduce.errors import RunBusyError, RunExistsError
from reproduce.runs.folders import MARKER_FILE, run_dir
from reproduce.runs.marker import is_complete


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
