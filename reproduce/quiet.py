"""Keeps TensorFlow's start-up chatter and expected warnings out of the command line's output.

On a machine without a GPU, TensorFlow prints notices at import and device
start-up that read like failures ("failed call to cuInit ... UNKNOWN ERROR
(303)"). Some are written by its C++ logging before `TF_CPP_MIN_LOG_LEVEL`
applies, so while TensorFlow loads, what the process writes to stderr is
captured and replayed without the known notices. Only the command line (and
its sweep workers) call this: the library and `callbacks/` change no logging
setting of the user's process.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
import threading

LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
QUIET_VARIABLE = "REPRODUCE_QUIET_TENSORFLOW"  # tells our worker processes to quieten too
# What TensorFlow prints while it loads on a machine like this one, none of it actionable.
START_UP_NOISE = re.compile("|".join([
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"cudart_stub\.cc:\d+\] Could not find cuda drivers",
    r"cuda_platform\.cc:\d+\] failed call to cuInit",
    r"oneDNN custom operations are on",
    r"Unable to register cu(DNN|FFT|BLAS) factory",
    r"computation_placer\.cc:\d+\] .* already registered",
    r"TF-TRT Warning: Could not find TensorRT",
    r"This TensorFlow binary is optimized to use available CPU instructions",
    r"rebuild TensorFlow with the appropriate compiler flags",
]))
# Python-side warnings a sweep triggers by design (one model traced per run).
EXPECTED_WARNINGS = ("triggered tf.function retracing",)


def quiet_tensorflow(verbose: bool = False) -> None:
    """Quietens TensorFlow in this process and in the workers it starts.

    Does nothing with `verbose`, or when the user set `TF_CPP_MIN_LOG_LEVEL`
    (their choice of TensorFlow's log level stands). Call it before anything
    imports TensorFlow.
    """
    if verbose or LEVEL_VARIABLE in os.environ:
        return
    os.environ[LEVEL_VARIABLE] = "2"  # warnings and errors of TensorFlow's own C++ logging
    os.environ[QUIET_VARIABLE] = "1"
    install()


def install(start_devices: bool = True) -> None:
    """Filters stderr while TensorFlow loads, and drops the expected Python warnings.

    With `start_devices`, TensorFlow's devices are started as it loads, still
    filtered (CUDA prints its notices then). A process that others are forked
    from must not start CUDA: it passes False, and each forked process calls
    `start_devices`.
    """
    if "tensorflow" not in sys.modules and not any(
            isinstance(finder, _QuietImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport(start_devices))
    logger = logging.getLogger("tensorflow")
    if _drop_expected_warnings not in logger.filters:
        logger.addFilter(_drop_expected_warnings)


def start_devices() -> None:
    """Starts TensorFlow's devices with stderr filtered (see `install`)."""
    import tensorflow as tf

    with _filtered_stderr():
        tf.config.list_physical_devices("GPU")


def _drop_expected_warnings(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    return not any(text in message for text in EXPECTED_WARNINGS)


class _QuietImport(importlib.abc.MetaPathFinder):
    """Wraps the loader of `tensorflow` so that its import runs with stderr filtered."""

    def __init__(self, start_devices: bool):
        self.start_devices = start_devices

    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once; and the lookup below must not find us again
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader, self.start_devices)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader, start_devices: bool):
        self.loader = loader
        self.start_devices = start_devices

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with _filtered_stderr():
            self.loader.exec_module(module)
            if self.start_devices:
                module.config.list_physical_devices("GPU")  # CUDA's start-up notices come here

    def __getattr__(self, name):
        return getattr(self.loader, name)


@contextlib.contextmanager
def _filtered_stderr():
    """Captures file descriptor 2, then writes back every line but the known notices.

    What the whole process writes to stderr meanwhile is captured, from any
    thread: when TensorFlow loads in a background thread (`article.import_analysis`)
    and the process exits first (Ctrl-C), the capture is replayed at exit, so
    the command's own last lines are not lost.
    """
    sys.stderr.flush()
    capture = _Capture(os.dup(2), tempfile.TemporaryFile())
    os.dup2(capture.file.fileno(), 2)
    atexit.register(capture.replay)
    try:
        yield
    finally:
        capture.replay()
        atexit.unregister(capture.replay)


class _Capture:
    """Where stderr went (`saved`, a duplicate of fd 2) and where it goes (`file`)."""

    def __init__(self, saved: int, file):
        self.saved = saved
        self.file = file
        self._lock = threading.Lock()

    def replay(self) -> None:
        """Puts fd 2 back and writes what was captured, without the known notices; once."""
        with self._lock:
            if self.file is None:
                return
            sys.stderr.flush()
            os.dup2(self.saved, 2)
            os.close(self.saved)
            self.file.seek(0)
            text = self.file.read().decode(errors="replace")
            self.file.close()
            self.file = None
        kept = [line for line in text.splitlines(keepends=True)
                if not START_UP_NOISE.search(line)]
        sys.stderr.write("".join(kept))
        sys.stderr.flush()
