"""Shared fixtures: tiny offline runs trained once per test session."""

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from reproduce.config import TEST_CONFIG  # noqa: E402


def run_cli(*args, cwd=None):
    """Runs `reproduce ARGS...` in a fresh process and returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "reproduce.cli", *map(str, args)],
        capture_output=True, text=True, cwd=cwd,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


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
    from reproduce.train import train

    return train(TEST_CONFIG.replace(activation="relu"), tmp_path_factory.mktemp("logs"), verbose=0)
