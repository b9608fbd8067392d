"""The experiments beyond the article, end to end on tiny sweeps: training -> figures -> reports
with C6 and C7 verdicts and their numbers."""

import contextlib
import io
import json

import matplotlib.image
import numpy as np
import pytest

from conftest import numbers_in, run_cli
from reproduce import report, runs
from reproduce.config import RunConfig
from reproduce.execution import Sweep
from reproduce.experiments import beyond_sweeps, run_beyond

# Its module fixtures are built once: every test of the module on one xdist worker.
pytestmark = pytest.mark.xdist_group("beyond")

VERDICTS = {"supported", "partially supported", "refuted", "insufficient data"}
# One and two hidden layers on the saxe task at the paper's small scale, 600 steps at τ = 32.
TINY_SAXE = Sweep("saxe", {"depth": [1, 2]}, {
    "dataset": "saxe", "width": 16, "initializer": "normal", "init_scale": 1e-3,
    "optimizer": "sgd", "learning_rate": 8.0, "batch_size": 32, "passes_per_epoch": 300,
    "epochs": 2, "steps_per_execution": 100, "use_bias": False, "log_gradients": False,
    "log_weights": False, "log_activations": False})
# C7's three runs on 200 digits, three narrow hidden layers, 40 steps each.
TINY_C7 = {"dataset": "digits", "samples": 200, "depth": 3, "width": 32, "optimizer": "sgd",
           "learning_rate": 0.1, "batch_size": 10, "epochs": 2, "log_every": 8,
           "probe_size": 64, "log_weights": False}
TINY_TANH = Sweep("glorot_bengio", {"initializer": ["standard", "glorot_uniform"]},
                  {**TINY_C7, "activation": "tanh"})
TINY_SIGMOID = Sweep("glorot_bengio", {}, {**TINY_C7, "activation": "sigmoid",
                                           "initializer": "standard"})


@pytest.fixture(scope="module")
def beyond(tmp_path_factory):
    """The experiment folders, and what `run_beyond` printed."""
    logdir = tmp_path_factory.mktemp("logs")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        roots = run_beyond(logdir, jobs=1, sweeps=[TINY_SAXE, TINY_SIGMOID, TINY_TANH])
    return {**dict(zip(["saxe", "glorot_bengio"], roots)), "printed": printed.getvalue()}


def claim_of(root, claim_id):
    data = json.loads((root / report.REPORT_JSON).read_text())
    (claim,) = data["claims"]
    assert claim["id"] == claim_id and claim["verdict"] in VERDICTS and claim["rule"]
    assert all(value == value for value in numbers_in(claim["evidence"]))  # no NaN
    return claim


def test_saxe_experiment_gives_c6_with_mode_by_mode_numbers(beyond):
    root = beyond["saxe"]
    claim = claim_of(root, "C6")
    evidence = claim["evidence"]
    (reference,) = [run for run in evidence["runs"] if run["depth"] == 1]
    assert reference["tau"] == 32.0  # P·N₃/(2η) = 32·16/16
    assert (reference["examples"], reference["outputs"], reference["learning_rate"]) == (
        32, 16, 8.0)
    assert "τ = P·N₃/(2η) = 32 optimizer steps" in (root / report.REPORT_FILE).read_text()
    half_times = [mode["half_time"] for mode in reference["modes"]]
    assert all(isinstance(step, int) for step in half_times)
    assert half_times == sorted(half_times)  # the strong modes first
    assert [mode["strength"] for mode in reference["modes"]] == [5.0, 3.0, 2.0, 1.0, 0.5]
    assert all(0 < mode["initial"] < 1e-3 and mode["max_deviation"] < 0.5
               for mode in reference["modes"])
    assert evidence["scaled_time_spread"][0] < 0.5
    assert evidence["plateaus_by_scale"]["0.001"]["1"] == half_times[0]
    assert evidence["plateaus_by_scale"]["0.001"]["2"] is None  # still on its plateau
    assert evidence["plateaus_grow_with_depth"] is True
    markdown = (root / report.REPORT_FILE).read_text()
    assert "## C6" in markdown and "Saxe, McClelland & Ganguli" in markdown
    assert "## C1" not in markdown
    assert "![mode_strengths_linear](figures/mode_strengths_linear.png)" in markdown
    for name in ("mode_strengths_linear.png", "plateau_by_depth.png"):
        image = matplotlib.image.imread(root / "figures" / name)
        assert image.ndim == 3 and image.shape[0] > 100
    printed = beyond["printed"]
    assert f"Report:  {root / 'REPORT.md'}" in printed and "Times: sweep" in printed
    assert "5 runs: 5 trained" in printed
    assert "-bias=0  val_loss=" in printed  # a regression: its loss, not an accuracy


def test_saxe_runs_log_every_mode_at_every_step(beyond):
    (run,) = [run for run in runs.load_runs(beyond["saxe"]) if run.config.depth == 1]
    scalars = run.events.train.scalars
    assert {tag for tag in scalars if tag.startswith("mode_strength/")} == {
        "mode_strength/s=5", "mode_strength/s=3", "mode_strength/s=2", "mode_strength/s=1",
        "mode_strength/s=0.5"}
    assert scalars["mode_strength/s=5"].steps.tolist() == list(range(601))
    assert scalars["mode_strength/s=5"].values[-1] == pytest.approx(5.0, rel=1e-3)
    assert run.name == ("saxe/linear-d1-w16-s0-init=normal-opt=sgd-lr=8-ep=2"
                        "-iscale=0.001-passes=300-bias=0")
    assert (runs.experiment_dir_of(run.path) / "hparams_config").is_dir()


def test_glorot_bengio_experiment_gives_c7_with_gradient_ratios(beyond):
    root = beyond["glorot_bengio"]
    claim = claim_of(root, "C7")
    evidence = claim["evidence"]
    assert {(run["activation"], run["initializer"]) for run in evidence["runs"]} == {
        ("sigmoid", "standard"), ("tanh", "standard"), ("tanh", "glorot_uniform")}
    ratios = evidence["tanh_backprop_ratio"]
    assert 0 < ratios["standard"] < ratios["glorot_uniform"]  # standard shrinks more
    for run in evidence["runs"]:
        assert len(run["activation_mean"]) == 3 and len(run["backprop_std"]) == 3
        assert run["steps"][0] == 0 and len(run["steps"]) == len(run["activation_mean"][0])
    sigmoid = next(run for run in evidence["runs"] if run["activation"] == "sigmoid")
    assert np.allclose([layer[0] for layer in sigmoid["activation_mean"]], 0.5, atol=0.1)
    assert isinstance(evidence["top_layer_saturates"], bool)
    shares = evidence["tanh_most_saturated_share"]
    assert set(shares) == {"standard", "glorot_uniform"}
    assert all(len(layers) == 3 and all(0 <= share <= 1 for share in layers)
               for layers in shares.values())
    markdown = (root / report.REPORT_FILE).read_text()
    for text in ("## C7", "replications disagree",
                 "Our layers have 32 units where the paper's have 1,000",
                 f"the budget is {sigmoid['steps'][-1]} updates"):
        assert text in markdown
    for name in ("activations_over_training.png", "backprop_gradients_at_step_0.png"):
        assert (root / "figures" / name).is_file()
    assert report.is_beyond(root) and report.is_beyond(beyond["saxe"])


def test_report_and_plot_commands_choose_the_experiments_own_claim_and_figures(beyond):
    root = beyond["glorot_bengio"]
    (root / report.REPORT_FILE).unlink()
    for command in ("report", "plot"):
        result = run_cli(command, root)
        assert result.returncode == 0, result.stderr[-2000:]
    assert "## C7" in (root / report.REPORT_FILE).read_text()
    assert "backprop_gradients_at_step_0.png" in result.stdout


def test_packaged_experiments_are_the_documented_ones():
    configs = [config for sweep in beyond_sweeps() for config in sweep.configs()]
    saxe = [config for config in configs if config.experiment == "saxe"]
    glorot_bengio = [config for config in configs if config.experiment == "glorot_bengio"]
    assert len(saxe) == 12 and len(glorot_bengio) == 6
    assert {(config.depth, config.init_scale) for config in saxe} == {
        (1, 1e-3), (2, 1e-3), (1, 0.05), (2, 0.05), (3, 0.05), (4, 0.05)}
    assert {config.learning_rate for config in saxe} == {2.0}  # τ = 128 steps
    assert all(not config.use_bias and config.batch_size == 32 for config in saxe)
    assert {(config.activation, config.initializer) for config in glorot_bengio} == {
        (activation, initializer) for activation in ("sigmoid", "tanh", "softsign")
        for initializer in ("standard", "glorot_uniform")}
    assert all((config.depth, config.width, config.batch_size) == (5, 256, 10)
               for config in glorot_bengio)


def test_new_fields_keep_old_configs_and_their_run_names():
    old = json.loads(RunConfig().to_json())
    for field in ("init_scale", "use_bias", "passes_per_epoch"):
        del old[field]
    assert RunConfig.from_dict(old) == RunConfig()
    assert runs.run_name(RunConfig()) == "moons/linear-d4-w32-s0"
    assert runs.run_name(RunConfig(init_scale=0.5, use_bias=False, passes_per_epoch=3)) == (
        "moons/linear-d4-w32-s0-iscale=0.5-passes=3-bias=0")
