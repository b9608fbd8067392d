"""Worker processes (sweep runs, figures), forked from one process that loaded their imports once.

Importing TensorFlow and Keras costs about 9 s of CPU here, and a sweep
starts one worker per core plus one. The workers are therefore forked from
multiprocessing's fork server, which imports `worker_imports`
once (figures alone: `reproduce.figures.article`). Forking is safe there: that
process starts no TensorFlow runtime and no device (a forked process could
not use a CUDA context it inherited); each worker starts its own.

The fork server starts with this process's environment and folder, and
lives until this process and every worker have ended; a worker takes this
process's environment and folder as they are when it starts (`follow`).

`train_one` trains one run of a sweep in a worker (local or on Ray), or in
this process.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import sys
import threading
import time
from pathlib import Path

from reproduce import quiet, runs
from reproduce.config import RunConfig
from reproduce.errors import RunBusyError, RunExistsError
from reproduce.execution.outcomes import Outcome, RunOutcome

SWEEP_IMPORTS = ("reproduce.execution.worker_imports",)
FIGURE_IMPORTS = ("reproduce.figures.article",)  # matplotlib, without TensorFlow


def context(imports=SWEEP_IMPORTS):
    """The multiprocessing context to start workers with.

    `imports`: the modules the fork server imports, if this call is the one
    that starts it (a server already running keeps its own).
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(imports))
    return context


def state() -> tuple[dict, str]:
    """This process's environment and folder, for `follow` in a worker."""
    return dict(os.environ), os.getcwd()


def follow(environment: dict, folder: str) -> None:
    """Takes the starting process's environment and folder (`state`), in a worker."""
    os.environ.clear()
    os.environ.update(environment)
    os.chdir(folder)


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """How `train_one` trains each run of a sweep."""

    logdir: str
    verbose: int = 0  # Keras fit verbosity, in-process runs only
    reuse_models: bool = True  # share one traced model between runs of a trace key
    wait: bool = False  # wait for runs another process is training
    announce: bool = True  # the worker prints each run's start line (Ray's driver prints its own)


def init_worker(sweep: int, environment: dict, folder: str) -> None:
    follow(environment, folder)
    # Ctrl-C is the sweep's to handle: it stops the workers and names their runs.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker whose sweep was killed stops at once instead of writing on behind its back.
    threading.Thread(target=_exit_without_sweep, args=(sweep,), daemon=True).start()
    configure_worker(threads=1)  # the workers already use every core


def configure_worker(threads: int) -> None:
    """Sets up a process that trains runs of a sweep: `threads` TensorFlow threads each way."""
    import tensorflow as tf  # loaded already in a local worker (`workers`)

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    if os.environ.get(quiet.QUIET_VARIABLE):
        quiet.start_devices()


def _exit_without_sweep(sweep: int) -> None:
    while _alive(sweep):
        time.sleep(0.5)
    os._exit(1)


def _alive(pid: int) -> bool:
    """Whether process `pid` runs (a killed process left unreaped, a zombie, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc (macOS)
        return True


def train_one(config_json: str, options: TrainOptions, position: str = "") -> RunOutcome:
    """Trains one configuration (in a worker or in-process); errors become a failed outcome.

    Prints the run's start line, from the worker that runs it, once it holds
    the run's lock. A run another process is training is `BUSY` (with
    `options.wait`, it is waited for); one that process completed is `ELSEWHERE`.
    """
    config = RunConfig.from_json(config_json)
    name = runs.run_name(config)
    start = time.perf_counter()

    def announce():
        if options.announce:
            print(f"{position} {name}  started".lstrip(), flush=True)

    try:
        from reproduce.training.trainer import train

        result = train(config, options.logdir, verbose=options.verbose, wait=options.wait,
                       on_start=announce, reuse_models=options.reuse_models)
    except RunBusyError:
        return RunOutcome(name, Outcome.BUSY, 0.0, {})
    except RunExistsError:  # it was not complete when the sweep started
        return RunOutcome(name, Outcome.ELSEWHERE, 0.0, {})
    except Exception as error:  # noqa: BLE001 - one bad run must not stop the sweep
        print(f"{name}: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        return RunOutcome(name, Outcome.FAILED, time.perf_counter() - start, {},
                          f"{type(error).__name__}: {error}")
    return RunOutcome(name, Outcome(result.status), result.wall_time, result.final)
