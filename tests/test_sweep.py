import concurrent.futures
import os

import numpy as np
import pytest

from conftest import TINY_FIXED, run_cli
from reproduce import execution, runs
from reproduce.config import TEST_CONFIG
from reproduce.errors import ConfigError
from reproduce.execution import workers
from reproduce.runs import events


def write_sweep(path, grid, experiment="tiny", fixed=TINY_FIXED):
    path.write_text(f'experiment = "{experiment}"\n[grid]\n{grid}\n{fixed}')
    return path


def test_default_sweep_is_packaged_and_is_the_article_grid():
    assert execution.default_sweep_path().is_file()
    configs = execution.load_sweep().configs()
    assert len(configs) == 75
    assert {config.activation for config in configs} == {
        "linear", "relu", "tanh", "sigmoid", "swish"}
    assert {config.dataset for config in configs} == {
        "moons", "circles", "xor", "linear", "digits"}
    assert {(config.depth, config.width, config.experiment) for config in configs} == {
        (4, 32, "article")}


def test_flags_override_grid_entries():
    configs = execution.load_sweep().with_grid(activation=["linear", "relu"], seed=[5]).configs()
    assert len(configs) == 2 * 5
    assert {config.seed for config in configs} == {5}


@pytest.mark.parametrize("text, message", [
    ('experimant = "x"\n', r"unknown sweep key\(s\) 'experimant' in top level"),
    ('[grid]\nactivations = ["relu"]\n', r"unknown sweep key\(s\) 'activations' in \[grid\]"),
    ('[fixed]\ndepht = 2\n', r"unknown sweep key\(s\) 'depht' in \[fixed\]"),
    ('[grid]\nactivation = "relu"\n', r"\[grid\] activation must be a non-empty list"),
    ('[grid]\nactivation = ["relux"]\n', r"invalid activation 'relux'"),
    ('[fixed]\ndepth = 0\n', r"depth must be at least 1"),
    ('[grid\n', r"not valid TOML"),
])
def test_bad_sweep_files_are_rejected(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        execution.load_sweep(path)


def test_bad_sweep_file_exits_2_through_command_line(tmp_path):
    path = write_sweep(tmp_path / "bad.toml", 'activation = ["relu"]\nlayers = [2]')
    result = run_cli("sweep", path, "--logdir", tmp_path / "logs")
    assert result.returncode == 2
    assert "unknown sweep key(s) 'layers' in [grid]" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "logs").exists()


def test_sweep_skips_completed_runs_and_redoes_interrupted_one(tmp_path, capsys):
    tiny = execution.load_sweep(write_sweep(tmp_path / "tiny.toml",
                                            'activation = ["linear", "relu"]'))
    first = execution.run_all(tiny, tmp_path, jobs=1)
    assert [outcome.status for outcome in first.outcomes] == ["complete", "complete"]
    output = capsys.readouterr().out
    assert "[1/2] moons/linear-d2-w8-s0-bs=16-ep=2-n=80  started" in output
    assert "[2/2] moons/relu-d2-w8-s0-bs=16-ep=2-n=80  val_acc=" in output

    linear_dir, relu_dir = (runs.run_dir(config, tmp_path) for config in tiny.configs())
    relu_marker = (relu_dir / "COMPLETE").read_text()
    (linear_dir / "COMPLETE").unlink()  # as if the run had been interrupted
    with pytest.warns(UserWarning, match="replacing incomplete run"):
        second = execution.run_all(tiny, tmp_path, jobs=1)
    assert [outcome.status for outcome in second.outcomes] == ["complete", "skipped"]
    assert runs.is_complete(linear_dir)
    assert (relu_dir / "COMPLETE").read_text() == relu_marker
    assert "already complete, skipped" in capsys.readouterr().out


def test_diverging_run_is_marked_and_sweep_continues(tmp_path, capsys):
    fixed = TINY_FIXED.replace("depth = 2", 'depth = 2\noptimizer = "sgd"')
    grid = 'learning_rate = [1e6, 0.01]\nactivation = ["linear"]'
    tiny = execution.load_sweep(write_sweep(tmp_path / "tiny.toml", grid, fixed=fixed))
    summary = execution.run_all(tiny, tmp_path, jobs=1)
    assert [outcome.status for outcome in summary.outcomes] == ["diverged", "complete"]
    diverged_dir = runs.run_dir(tiny.configs()[0], tmp_path)
    marker = runs.read_marker(diverged_dir)
    assert marker.status is runs.RunStatus.DIVERGED
    # Stopped at the end of the compiled call (4 steps) holding the first NaN loss.
    losses = events.read_events(diverged_dir / runs.TRAIN_DIR).scalars["batch_loss"]
    first_nan = int(losses.steps[~np.isfinite(losses.values)][0])
    assert marker.diverged_at_step == first_nan
    assert marker.steps == -(-first_nan // 4) * 4 < 8
    assert "DIVERGED (NaN loss)" in capsys.readouterr().out
    again = execution.run_all(tiny, tmp_path, jobs=1)
    assert [outcome.status for outcome in again.outcomes] == ["skipped", "skipped"]


def test_summary_line_gives_times():
    outcomes = [execution.RunOutcome("a", "complete", 4.0, {}),
                execution.RunOutcome("b", "skipped", 0, {})]
    summary = execution.SweepSummary(TEST_CONFIG, outcomes, 10.0, 2)
    assert summary.describe() == (
        "2 runs: 1 trained, 1 already complete, 0 failed, in 10s with 2 job(s); "
        "4.0 s per run in its worker, 10.0 s per run of wall time")


def test_workers_start_with_this_process_environment_and_folder(tmp_path, monkeypatch):
    def start():
        return concurrent.futures.ProcessPoolExecutor(
            1, mp_context=workers.context(), initializer=workers.follow,
            initargs=workers.state())

    with start() as pool:  # the fork server starts, with the environment of now
        assert pool.submit(os.getenv, "REPRODUCE_TEST_MARK").result() is None
    monkeypatch.setenv("REPRODUCE_TEST_MARK", "set later")
    monkeypatch.chdir(tmp_path)
    with start() as pool:
        assert pool.submit(os.getenv, "REPRODUCE_TEST_MARK").result() == "set later"
        assert pool.submit(os.getcwd).result() == str(tmp_path)
