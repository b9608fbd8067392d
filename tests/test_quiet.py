"""Quiet by default: the command line prints its own lines, not TensorFlow's start-up chatter;
`--verbose` brings it back; the callbacks change no logging setting of the user's process.
(`test_article` checks that a whole `reproduce article` with two sweep workers writes nothing
on stderr.)"""

import re
import subprocess
import sys

import pytest

from conftest import cli_environment, run_cli

RETRACING = "triggered tf.function retracing"
# Traces one tf.function eight times, which makes TensorFlow warn about retracing.
RETRACE_SCRIPT = """
import sys
from reproduce.quiet import quiet_tensorflow
quiet_tensorflow(verbose=sys.argv[1] == "verbose")
import tensorflow as tf
function = tf.function(lambda x: x * 2)
for value in range(8):
    function(value)
"""
# Every logging setting a library could change, before and after using the callbacks.
LOGGING_STATE_SCRIPT = """
import logging, os, sys, warnings
import keras
import numpy as np
import tensorflow as tf
from absl import logging as absl_logging

def state():
    loggers = {name: (logger.level, list(logger.filters), list(logger.handlers),
                      logger.propagate, logger.disabled)
               for name, logger in [("", logging.getLogger()),
                                    *logging.Logger.manager.loggerDict.items()]
               if isinstance(logger, logging.Logger)}
    return (loggers, list(warnings.filters), logging.root.manager.disable,
            {name: value for name, value in os.environ.items() if name.startswith("TF_")},
            absl_logging.get_verbosity(), tf.get_logger().level, list(sys.meta_path))

before = state()
from callbacks import (ActivationLogger, BatchLossLogger, GradientLogger, StepRecorder,
                       WeightLogger)
x, y = np.ones((16, 3), "float32"), np.zeros((16, 1), "float32")
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh"),
                          keras.layers.Dense(1)])
model.compile(StepRecorder("sgd"), "mse")
logdir = sys.argv[1]
model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[
    BatchLossLogger(logdir), GradientLogger(logdir, probe=(x, y)),
    WeightLogger(logdir, probe=(x, y)), ActivationLogger(logdir, probe=(x, y))])
after = state()
new_loggers = set(after[0]) - set(before[0])
changed = {name: (before[0][name], after[0][name]) for name in before[0]
           if after[0].get(name) != before[0][name]}
assert not changed, changed
assert after[1:] == before[1:], (before[1:], after[1:])
print("unchanged; loggers created:", sorted(new_loggers))
"""


def test_train_prints_only_its_own_lines_on_stderr(tmp_path):
    result = run_cli("train", "--experiment", "tiny", "--depth", "2", "--width", "8",
                     "--epochs", "2", "--samples", "80", "--logdir", tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and re.fullmatch(
        r"moons/linear-d2-w8-s0-ep=2-n=80: training on \S+", lines[0]), result.stderr
    assert result.stdout.splitlines()[-1] == (
        f"complete: {tmp_path}/tiny/moons/linear-d2-w8-s0-ep=2-n=80")


@pytest.mark.parametrize("mode, warned", [("quiet", False), ("verbose", True)])
def test_expected_retracing_warning_is_silenced_unless_verbose(mode, warned):
    result = subprocess.run([sys.executable, "-c", RETRACE_SCRIPT, mode], capture_output=True,
                            text=True, env=cli_environment())
    assert result.returncode == 0, result.stderr
    assert (RETRACING in result.stderr) is warned, result.stderr


def test_user_set_log_level_is_left_alone(tmp_path):
    result = subprocess.run([sys.executable, "-c", RETRACE_SCRIPT, "quiet"], capture_output=True,
                            text=True, env=cli_environment(TF_CPP_MIN_LOG_LEVEL="1"))
    assert result.returncode == 0, result.stderr
    assert RETRACING in result.stderr  # the user chose TensorFlow's logging: nothing filtered


def test_callbacks_change_no_logging_setting_of_the_users_process(tmp_path):
    result = subprocess.run([sys.executable, "-c", LOGGING_STATE_SCRIPT, str(tmp_path)],
                            capture_output=True, text=True, env=cli_environment())
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("unchanged")
