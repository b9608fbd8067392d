"""Confinement: runs stay inside the log root, saved files load without running
code, and TensorBoard listens on this machine only unless told otherwise."""

import ast
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reproduce import cli, runs, tensorboard
from reproduce.config import NAME_CHARACTERS, TEST_CONFIG
from reproduce.errors import ConfigError

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*PACKAGE_ROOT.glob("reproduce/**/*.py"), *PACKAGE_ROOT.glob("callbacks/*.py")])


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "/etc", "a/b", "..\\b", "", "Logs"])
def test_experiment_that_could_leave_the_log_root_is_rejected(name):
    expected = f"invalid experiment {re.escape(repr(name))}.*not starting with '.'"
    with pytest.raises(ConfigError, match=expected):
        TEST_CONFIG.replace(experiment=name)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=NAME_CHARACTERS + "/\\ ~", max_size=6))
def test_every_accepted_experiment_is_a_folder_inside_the_log_root(name):
    try:
        config = TEST_CONFIG.replace(experiment=name)
    except ConfigError:
        return
    logdir = Path("/logs/root")
    experiment = runs.experiment_dir(logdir, config.experiment)
    assert experiment.resolve().parent == logdir
    assert runs.run_dir(config, logdir).resolve().is_relative_to(experiment)


def calls_of(dotted_name):
    """(file, call) for every call written as `dotted_name(...)` in the package."""
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == dotted_name:
                yield path.name, node


def keyword_value(call, keyword):
    values = [item.value for item in call.keywords if item.arg == keyword]
    return values[0].value if values and isinstance(values[0], ast.Constant) else None


@pytest.mark.parametrize("function, keyword, safe", [
    ("np.load", "allow_pickle", False),
    ("keras.saving.load_model", "safe_mode", True),
])
def test_every_load_refuses_to_run_stored_code(function, keyword, safe):
    calls = list(calls_of(function))
    assert calls
    assert [(name, call.lineno) for name, call in calls
            if keyword_value(call, keyword) is not safe] == []


def test_nothing_imports_pickle():
    imported = {alias.name for path in SOURCES for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names}
    assert not {"pickle", "dill", "cloudpickle"} & imported


def test_tensorboard_binds_loopback_by_default():
    command = tensorboard.build_command("logs")
    assert command[command.index("--host") + 1] == "127.0.0.1"
    args = cli.build_parser().parse_args(["tensorboard", "logs"])
    assert args.host == "127.0.0.1"


def test_tensorboard_binds_another_address_only_when_asked():
    args = cli.build_parser().parse_args(["tensorboard", "logs", "--host", "0.0.0.0"])
    command = tensorboard.build_command(args.logdir, args.port, args.host)
    assert command[command.index("--host") + 1] == "0.0.0.0"


@pytest.mark.parametrize("port, host, message", [
    (0, "127.0.0.1", "port must be between 1 and 65535, got 0"),
    (65536, "127.0.0.1", "got 65536"),
    (6006, " ", "host must be an address such as 127.0.0.1, got ' '"),
])
def test_launch_rejects_bad_addresses_before_starting(tmp_path, port, host, message):
    with pytest.raises(ConfigError, match=message):
        tensorboard.launch(tmp_path, port=port, host=host)
