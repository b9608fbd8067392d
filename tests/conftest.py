"""Shared fixtures: tiny offline runs trained once per test session."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reproduce import quiet
from reproduce.config import TEST_CONFIG
from reproduce.quiet import LEVEL_VARIABLE, QUIET_VARIABLE

os.environ.setdefault(LEVEL_VARIABLE, "2")
quiet.install()  # before TensorFlow loads in this process

from reproduce.training.trainer import HOLD_VARIABLE, RELEASE_VARIABLE  # noqa: E402

PROCESS_TIMEOUT_S = 300  # a generous bound on any one command, never reached when all is well
# Three tiny runs on moons: 64 training examples in batches of 16, three epochs, 12 steps.
TINY_SWEEP = """experiment = "tiny"
[grid]
activation = ["linear", "relu", "tanh"]
[fixed]
depth = 2
width = 8
batch_size = 16
epochs = 3
samples = 80
steps_per_execution = 4
probe_size = 32
"""
TINY_SWEEP_STEPS = 12
# The [fixed] table of small sweeps: 80 samples, 2 epochs of 4 steps.
TINY_FIXED = """
[fixed]
depth = 2
width = 8
batch_size = 16
epochs = 2
samples = 80
steps_per_execution = 4
probe_size = 32
"""


def tiny_sweep_run(activation: str) -> str:
    """The run name of TINY_SWEEP's run with `activation`."""
    return f"moons/{activation}-d2-w8-s0-bs=16-ep=3-n=80"


def cli_environment(**variables) -> dict[str, str]:
    """The environment of a user who set no TensorFlow variable, plus `variables`."""
    env = {name: value for name, value in os.environ.items()
           if name not in (LEVEL_VARIABLE, QUIET_VARIABLE, HOLD_VARIABLE, RELEASE_VARIABLE)}
    return {**env, **variables}


def run_cli(*args, cwd=None, env=None):
    """Runs `reproduce ARGS...` in a fresh process and returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "reproduce.cli", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, timeout=PROCESS_TIMEOUT_S,
        env=cli_environment(**(env or {})),
    )


def start_cli(*args, hold: str | None = None, release: Path | None = None):
    """Starts `reproduce ARGS...` in a process group of its own, as a terminal would.

    Runs whose name matches the pattern `hold` stop at their first batch end,
    print "<run>: held at step N" and wait for Ctrl-C or for `release` to exist.
    """
    env = cli_environment()
    if hold:
        env[HOLD_VARIABLE] = hold
        if release:
            env[RELEASE_VARIABLE] = str(release)
    return subprocess.Popen([sys.executable, "-m", "reproduce.cli", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=env, preexec_fn=_default_ctrl_c)


def _default_ctrl_c() -> None:
    # As in a terminal: a suite started in the background (`make test &`) ignores SIGINT,
    # and its children would inherit that.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_line(process, text: str) -> str:
    """Reads the process's stdout until a line holds `text`; returns that line."""
    return wait_for_lines(process, [text])[0]


def wait_for_lines(process, texts) -> list[str]:
    """Reads the process's stdout until each of `texts` was in a line, in any order."""
    found = {}
    for line in process.stdout:
        found.update({text: line for text in texts if text in line and text not in found})
        if len(found) == len(texts):
            return [found[text] for text in texts]
    missing = [text for text in texts if text not in found]
    pytest.fail(f"the command ended without printing {missing}: {process.stderr.read()[-2000:]}")


def finish(process, signal_number=None, whole_group=False) -> tuple[str, str]:
    """Sends `signal_number` (if any) to the process or its whole group; returns its output."""
    try:
        if signal_number is not None and whole_group:
            os.killpg(process.pid, signal_number)
        elif signal_number is not None:
            process.send_signal(signal_number)
        return process.communicate(timeout=PROCESS_TIMEOUT_S)
    finally:
        kill_if_running(process)


def kill_if_running(process) -> None:
    if process is not None and process.poll() is None:
        process.kill()
        process.wait()


def wait_until_group_gone(group: int) -> None:
    """Waits until no live process is left in the process group (zombies do not count)."""
    deadline = time.monotonic() + PROCESS_TIMEOUT_S
    while _live_members(group):
        if time.monotonic() > deadline:
            pytest.fail(f"processes {_live_members(group)} of group {group} are still running")
        time.sleep(0.05)


def _live_members(group: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[2]) == group and fields[0] != "Z":  # fields: state, ppid, pgrp, ...
            members.append(int(stat.parent.name))
    return members


def event_file_pids(run_dir: Path) -> set[int]:
    """The process ids in the event file names (`events.out.tfevents.<time>.<host>.<pid>...`)."""
    pid = re.compile(rf"\.{re.escape(socket.gethostname())}\.(\d+)\.")
    return {int(pid.search(path.name).group(1)) for path in run_dir.rglob("events.out.tfevents.*")
            if not path.name.endswith(".hparams.v2")}


def numbers_in(value):
    """Yields every number inside nested dicts and lists (booleans excluded)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from numbers_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from numbers_in(item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A completed TEST_CONFIG run with relu (RunResult)."""
    from reproduce.training.trainer import train

    return train(TEST_CONFIG.replace(activation="relu"), tmp_path_factory.mktemp("logs"), verbose=0)
