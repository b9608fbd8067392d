"""The report package: its measures on known inputs, each claim's rule, and the whole report
of a tiny fixed sweep pinned against the report the code wrote before it became a package
(tests/golden/, written by commit 061e5e7 from the same four runs)."""

import dataclasses
import json
import math
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import numbers_in
from reproduce import datasets, report, runs
from reproduce.config import TEST_CONFIG
from reproduce.errors import DataMismatchError, RunNotFoundError
from reproduce.report import c5_linear_data, measures, networks
from reproduce.report.evidence import Accuracy
from reproduce.runs import events
from reproduce.training import models

# Its module fixtures are built once: every test of the module on one xdist worker.
pytestmark = pytest.mark.xdist_group("report")

GOLDEN = Path(__file__).parent / "golden"
# The tiny fixed sweep: TEST_CONFIG for 6 epochs (24 steps, enough for C1).
TINY = [TEST_CONFIG.replace(dataset=dataset, activation=activation, epochs=6)
        for dataset in ("moons", "linear") for activation in ("linear", "relu")]


def _randomise(model, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    for variable in model.trainable_variables:
        variable.assign(rng.normal(scale=scale, size=variable.shape).astype(np.float32))
    return model


def _softmax(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def test_collapsed_linear_network_gives_the_same_logits_and_rank_one():
    model = _randomise(models.build_model(TEST_CONFIG.replace(activation="linear"), 2, 2))
    x = np.random.default_rng(1).normal(size=(50, 2)).astype(np.float32)
    weight, bias = networks.collapse_linear(model)
    collapsed = x @ weight + bias
    assert weight.shape == (2, 1) and bias.shape == (1,)
    np.testing.assert_allclose(collapsed, networks.network_logits(model, x), rtol=1e-5, atol=1e-5)
    # Checked against the model's own sigmoid output too, not only against our logits.
    np.testing.assert_allclose(1 / (1 + np.exp(-collapsed)), model(x).numpy(), atol=1e-5)
    assert networks.matrix_rank(weight) == 1


def test_collapse_rank_follows_the_narrowest_factor():
    model = _randomise(models.build_model(TEST_CONFIG.replace(activation="linear"), 4, 3))
    x = np.random.default_rng(2).normal(size=(20, 4)).astype(np.float32)
    weight, bias = networks.collapse_linear(model)
    np.testing.assert_allclose(_softmax(x @ weight + bias), model(x).numpy(), atol=1e-5)
    assert weight.shape == (4, 3) and networks.matrix_rank(weight) == 3
    rng = np.random.default_rng(3)
    model.get_layer("dense_2").kernel.assign(
        np.outer(rng.normal(size=8), rng.normal(size=8)).astype(np.float32))
    assert networks.matrix_rank(networks.collapse_linear(model)[0]) == 1


def test_collapse_refuses_a_non_linear_network():
    model = models.build_model(TEST_CONFIG.replace(activation="relu"), 2, 2)
    with pytest.raises(ValueError, match="act_1 is not linear"):
        networks.collapse_linear(model)


def test_one_pass_batch_gradients_equal_the_tape_on_the_keras_model():
    model = _randomise(models.build_model(TEST_CONFIG.replace(activation="tanh"), 3, 4), scale=0.3)
    rng = np.random.default_rng(4)
    batches = [(rng.normal(size=(size, 3)).astype(np.float32),
                rng.integers(0, 4, size=size).astype(np.int32)) for size in (5, 9, 16)]
    for gradient, (x, y) in zip(networks.first_layer_gradients(model, batches), batches):
        direct = networks.kernel_gradient(model, x, y)
        np.testing.assert_allclose(gradient, direct, rtol=1e-4, atol=1e-6)


def test_backprop_formula_is_input_times_error_times_downstream_weights():
    model = _randomise(models.build_model(TEST_CONFIG.replace(activation="linear"), 2, 2))
    rng = np.random.default_rng(5)
    x = rng.normal(size=(32, 2)).astype(np.float32)
    y = rng.integers(0, 2, size=(32, 1)).astype(np.float32)
    direct = networks.kernel_gradient(model, x, y)
    np.testing.assert_allclose(networks.backprop_formula_gradient(model, x, y), direct,
                               rtol=1e-4, atol=1e-6)
    # The gradient moves with the input: doubling x changes it.
    assert networks.relative_change(networks.kernel_gradient(model, 2 * x, y), direct) > 0.1


def test_loss_drop_of_a_fast_exponential_decay():
    drop = measures.measure_loss_drop(1 + np.exp(-np.arange(1000) / 20))
    assert drop.initial == 2.0
    assert drop.final_level == pytest.approx(1.0, abs=1e-9)
    assert drop.early_share == pytest.approx(1 - math.exp(-100 / 20), abs=0.01)
    assert drop.late_share == pytest.approx(0.0, abs=1e-9)
    assert drop.slope_ratio == measures.SLOPE_RATIO_CAP
    assert report.c1_loss_drop.holds(drop)


def test_loss_drop_of_a_straight_line_does_not_hold():
    drop = measures.measure_loss_drop(np.linspace(2, 1, 1000))
    # Final level: mean of the last 100 values, about 1.05; 10% of the fall happens early.
    assert drop.final_level == pytest.approx(1.0495, abs=1e-3)
    assert drop.early_share == pytest.approx(0.1 / 0.95, abs=0.005)
    assert drop.late_share == pytest.approx(0.45 / 0.95, abs=0.01)
    assert not report.c1_loss_drop.holds(drop)


def test_loss_drop_of_a_flat_curve_has_no_shares():
    drop = measures.measure_loss_drop(np.full(100, 0.69))
    assert drop.relative_decrease == pytest.approx(0, abs=1e-12)
    assert drop.early_share == 0 and drop.late_share == 0
    assert not report.c1_loss_drop.holds(drop)


def _constant(value, count, buckets=30):
    histogram = np.zeros((buckets, 3))
    histogram[:, :2] = value
    histogram[-1, 2] = count
    return histogram


def _spread(low, high, counts):
    edges = np.linspace(low, high, len(counts) + 1)
    return np.stack([edges[:-1], edges[1:], counts], axis=1)


def test_mass_at_one_only_counts_constant_buckets():
    assert events.mass_at(_constant(1.0, 8192), 1.0) == 1.0
    assert events.mass_at(_constant(0.5, 8192), 1.0) == 0.0
    relu_like = _spread(0.0, 1.0, [600] + [0] * 28 + [400])
    assert events.mass_at(relu_like, 1.0) == 0.0
    assert events.mass_in_top_bucket(relu_like, 1.0) == pytest.approx(0.4)
    assert events.histogram_range(relu_like) == (0.0, 1.0)


def _row(dataset, model, mean, std=0.0, n=3):
    return Accuracy(dataset, model, mean, std, n, seeds=list(range(n)), values=[mean] * n)


def test_dataset_checks_apply_the_c5_rule():
    rows = [
        _row("moons", "linear", 0.88), _row("moons", "relu", 0.99),
        _row("moons", "logistic_regression", 0.87),
        _row("circles", "linear", 0.90), _row("circles", "relu", 0.99),
        _row("circles", "logistic_regression", 0.87),
        # Near chance, the seeds' spread widens the margin: 2 * sqrt((0.062² + 0.023²) / 3).
        _row("xor", "linear", 0.545, 0.062), _row("xor", "relu", 0.89),
        _row("xor", "logistic_regression", 0.512, 0.023),
        _row("linear", "linear", 0.97), _row("linear", "relu", 1.0),
        _row("digits", "linear", 0.95), _row("digits", "tanh", 0.97),
    ]
    checks = c5_linear_data.dataset_checks(rows)
    assert checks["moons"].holds is True and checks["moons"].best_nonlinear == 0.99
    assert checks["moons"].margin == 0.02
    assert checks["circles"].holds is False  # 0.03 above logistic regression, margin 0.02
    assert checks["xor"].margin == pytest.approx(2 * math.sqrt((0.062**2 + 0.023**2) / 3))
    assert checks["xor"].holds is True
    assert checks["linear"].holds is False  # 0.03 below the best, margin 0.02
    assert checks["digits"].kind == "real" and checks["digits"].competitive is True
    assert checks["digits"].to_json() == {
        "linear_network": 0.95, "logistic_regression": None, "best_nonlinear": 0.97,
        "best_nonlinear_activation": "tanh", "kind": "real", "holds": None,
        "competitive": True}


def test_each_claim_judge_applies_its_rule():
    assert report.c1_loss_drop.judge([]) == "insufficient data"
    assert report.c1_loss_drop.judge([{"holds": True}, {"holds": False}]) == (
        "partially supported")
    assert report.c2_derivative.judge({"mass_at_one_min": 0.999}) == "refuted"
    assert report.c3_gradients.judge([True, True], [True]) == "refuted"
    assert report.c3_gradients.judge([False], [False]) == "supported"
    assert report.c3_gradients.judge([True], []) == "insufficient data"
    assert report.c4_collapse.judge(2e-3) == "refuted"
    assert report.c5_linear_data.judge(["moons"], [], ["digits"]) == "partially supported"
    assert report.c5_linear_data.judge([], ["moons"], []) == "refuted"


def test_claim_registry_lists_one_module_per_claim_in_order():
    assert [claim.ID for claim in report.CLAIMS] == ["C1", "C2", "C3", "C4", "C5", "C6", "C7"]
    for claim in report.CLAIMS:
        assert claim.__name__.startswith(f"reproduce.report.{claim.ID.lower()}_")
        assert claim.STATEMENT and claim.RULE and callable(claim.build)


@pytest.fixture(scope="module")
def tiny_experiment(tmp_path_factory):
    """The TINY sweep: linear and relu networks on moons and linear."""
    from reproduce.training.trainer import train

    logdir = tmp_path_factory.mktemp("logs")
    for config in TINY:
        train(config, logdir, verbose=0)
    return logdir / TEST_CONFIG.experiment


def _numbers_masked(text: str) -> str:
    return re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "#", text)


def _assert_same(actual, expected, where="report"):
    """Equal structure, strings and booleans; floats to a relative 1e-3, or within 1e-6.

    Training the same runs on another CPU moves its results by about 1e-5
    relative (oneDNN picks its kernels by instruction set), and float32
    rounding errors of about 1e-7 (C3's and C4's max errors) by 100%.
    """
    if isinstance(expected, dict):
        assert list(actual) == list(expected), where
        for key in expected:
            _assert_same(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), where
        for index, (got, wanted) in enumerate(zip(actual, expected)):
            _assert_same(got, wanted, f"{where}[{index}]")
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=1e-3, abs=1e-6), where
    else:
        assert actual == expected and type(actual) is type(expected), where


def test_report_of_the_tiny_sweep_equals_the_golden_report(tiny_experiment, tmp_path):
    experiment = shutil.copytree(tiny_experiment, tmp_path / "test")
    markdown, data = report.write_report(experiment)
    written = json.loads(data.read_text())
    assert written.pop("experiment") == str(experiment)
    golden = json.loads((GOLDEN / "tiny_report.json").read_text())
    golden.pop("experiment")
    _assert_same(written, golden)
    assert [claim["verdict"] for claim in written["claims"]] == [
        "refuted", "supported", "refuted", "supported", "partially supported"]
    expected_text = (GOLDEN / "tiny_REPORT.md").read_text().replace("<experiment>",
                                                                    str(experiment))
    assert _numbers_masked(markdown.read_text()) == _numbers_masked(expected_text)


def test_report_leaves_out_the_data_checks_of_a_run_whose_data_changed(
        tiny_experiment, tmp_path):
    experiment = shutil.copytree(tiny_experiment, tmp_path / "test")
    changed = experiment / runs.run_name(TINY[2])  # linear/linear-...
    marker = runs.read_marker(changed)
    runs.write_marker(changed, dataclasses.replace(marker, data_sha256="0" * 64))
    with pytest.raises(DataMismatchError, match="differs from the one it was trained on"):
        runs.Run(changed).load_data()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = json.loads(report.write_report(experiment)[1].read_text())
    assert [str(warning.message) for warning in caught
            if "data-dependent checks" in str(warning.message)] == [
        f"leaving the data-dependent checks of run {changed} out: the regenerated linear split "
        f"differs from the one it was trained on (sha256 {marker.data_sha256[:12]}… instead of "
        f"000000000000…)"]
    claims = {claim["id"]: claim for claim in data["claims"]}
    c3_runs = {item["run"]: item for item in claims["C3"]["evidence"]["runs"]}
    assert c3_runs[runs.run_name(TINY[2])]["note"] == (
        "regenerated data differ from the data trained on")
    assert "final" not in c3_runs[runs.run_name(TINY[2])]
    assert "final" in c3_runs[runs.run_name(TINY[0])]
    assert [item["run"] for item in claims["C4"]["evidence"]["runs"]] == [runs.run_name(TINY[0])]
    linear_logreg = next(row for row in data["accuracy"]
                         if row["dataset"] == "linear" and row["model"] == "logistic_regression")
    assert linear_logreg["n"] == 1  # from the relu run, whose data still check out


def test_fingerprint_is_checked_when_data_are_regenerated(tiny_experiment):
    run = runs.Run(experiment_run := tiny_experiment / runs.run_name(TINY[0]))
    split = run.load_data()
    assert datasets.fingerprint(split) == runs.read_marker(experiment_run).data_sha256
    with pytest.raises(DataMismatchError, match="moons split differs"):
        datasets.load_checked(run.config.replace(noise=0.3), run.marker.data_sha256)


def test_report_end_to_end_on_tiny_runs(tiny_experiment, tmp_path):
    experiment = tmp_path / "test"
    shutil.copytree(tiny_experiment, experiment)
    shutil.rmtree(experiment / "linear")  # moons only
    markdown_path, json_path = report.write_report(experiment)
    assert (markdown_path, json_path) == (experiment / "REPORT.md", experiment / "report.json")
    data = json.loads(json_path.read_text())
    claims = {claim["id"]: claim for claim in data["claims"]}
    assert list(claims) == ["C1", "C2", "C3", "C4", "C5"]
    for claim in claims.values():
        assert claim["verdict"] in report.VERDICTS
        assert claim["rule"] and claim["claim"]
        numbers = list(numbers_in(claim["evidence"]))
        assert numbers and all(math.isfinite(number) for number in numbers), claim["id"]

    assert claims["C2"]["verdict"] == "supported"
    assert claims["C2"]["evidence"]["activations"]["linear"]["mass_at_one_min"] == 1.0
    assert claims["C2"]["evidence"]["activations"]["relu"]["mass_at_one_min"] == 0.0
    # Only moons was run: C3 needs `linear` data, C5 needs it and more.
    assert claims["C3"]["verdict"] == "insufficient data"
    assert claims["C5"]["verdict"] == "insufficient data"
    assert any("`linear` dataset" in item for item in claims["C5"]["evidence"]["missing"])
    c3 = claims["C3"]["evidence"]
    assert c3["initial_models_used"] == 1
    assert c3["logged_norm_max_mismatch"] < 1e-4  # recomputed = what the callback logged
    assert c3["final_inputs_doubled_change_min"] > 0.1
    c4 = claims["C4"]["evidence"]
    assert claims["C4"]["verdict"] == "supported"
    assert c4["runs"][0]["rank"] == 1 and c4["runs"][0]["relative_logit_difference"] < 1e-5
    assert c4["runs"][0]["collapsed_accuracy"] == pytest.approx(
        c4["runs"][0]["network_accuracy"], abs=1e-6)
    assert claims["C1"]["verdict"] in report.VERDICTS
    assert [row["configuration"] for row in claims["C1"]["evidence"]["configurations"]] == [
        "moons/linear-d2-w8-bs=16-ep=6-n=80", "moons/relu-d2-w8-bs=16-ep=6-n=80"]

    history = json.loads(
        (experiment / "moons/linear-d2-w8-s0-bs=16-ep=6-n=80/history.json").read_text())
    linear_row = next(row for row in data["accuracy"]
                      if row["dataset"] == "moons" and row["model"] == "linear")
    assert linear_row["values"] == [history["val_accuracy"][-1]]
    assert {row["model"] for row in data["accuracy"]} == {"linear", "relu", "logistic_regression"}
    assert [(run["name"], run["diverged"]) for run in data["runs"]] == [
        ("moons/linear-d2-w8-s0-bs=16-ep=6-n=80", False),
        ("moons/relu-d2-w8-s0-bs=16-ep=6-n=80", False)]

    text = markdown_path.read_text()
    for heading in ("## Summary", "## C1", "## C2", "## C3", "## C4", "## C5",
                    "## How to reproduce", "## Figures"):
        assert heading in text
    assert "make reproduce" in text and "*Rule.*" in text


def test_diverged_runs_are_listed_and_left_out(tiny_experiment, tmp_path):
    experiment = tmp_path / "test"
    shutil.copytree(tiny_experiment, experiment)
    shutil.rmtree(experiment / "linear")  # moons only
    relu = experiment / "moons/relu-d2-w8-s0-bs=16-ep=6-n=80"
    marker = runs.read_marker(relu)
    runs.write_marker(relu, dataclasses.replace(
        marker, status=runs.RunStatus.DIVERGED, diverged_at_step=7))
    data = json.loads(report.write_report(experiment)[1].read_text())
    assert [run["diverged"] for run in data["runs"]] == [False, True]
    assert [run["diverged_at_step"] for run in data["runs"]] == [None, 7]
    claims = {claim["id"]: claim for claim in data["claims"]}
    assert list(claims["C2"]["evidence"]["activations"]) == ["linear"]
    assert {row["model"] for row in data["accuracy"]} == {"linear", "logistic_regression"}
    text = (experiment / "REPORT.md").read_text()
    assert ("Diverged runs, excluded from every statistic:** moons/relu-d2-w8-s0-bs=16-ep=6-n=80 "
            "(at step 7)") in text


def test_no_completed_runs_raises(tmp_path):
    run = tmp_path / "test" / "moons" / "linear-d2-w8-s0"
    run.mkdir(parents=True)
    (run / "config.json").write_text(TEST_CONFIG.to_json())
    with pytest.raises(RunNotFoundError, match="no completed runs"):
        report.write_report(tmp_path / "test")
    with pytest.raises(RunNotFoundError, match="no such folder"):
        report.write_report(tmp_path / "missing")


def test_the_analysis_never_imports_the_training_code():
    """report, plots and compare read run folders only: no train, models, sweep, distribute."""
    import ast
    import subprocess
    import sys

    code = ("import sys; import reproduce.report, reproduce.figures.article, "
            "reproduce.compare.comparison, reproduce.figures.beyond; "
            "print(sorted(name for name in sys.modules if name.startswith('reproduce.')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout
    training = {"reproduce.training.trainer", "reproduce.training.models",
                "reproduce.execution.sweep", "reproduce.training.distribute"}
    assert "reproduce.report.writer" in loaded
    assert training.isdisjoint(ast.literal_eval(loaded))
