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


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A completed TEST_CONFIG run with relu (RunResult)."""
    from reproduce.train import train

    return train(TEST_CONFIG.replace(activation="relu"), tmp_path_factory.mktemp("logs"), verbose=0)
