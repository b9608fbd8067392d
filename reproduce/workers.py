"""Worker processes (sweep runs, figures), forked from one process that loaded their imports once.

Importing TensorFlow and Keras costs about 9 s of CPU here, and a sweep
starts one worker per core plus one. The workers are therefore forked from
multiprocessing's fork server, which imports `reproduce.worker_imports`
once (figures alone: `reproduce.plots`). Forking is safe there: that
process starts no TensorFlow runtime and no device (a forked process could
not use a CUDA context it inherited); each worker starts its own.

The fork server starts with this process's environment and folder, and
lives until this process and every worker have ended; a worker takes this
process's environment and folder as they are when it starts (`follow`).
"""

from __future__ import annotations

import multiprocessing
import os

SWEEP_IMPORTS = ("reproduce.worker_imports",)
FIGURE_IMPORTS = ("reproduce.plots",)  # matplotlib, without TensorFlow


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
