import json
import math
import os
import re
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest
import tensorflow as tf

from reproduce import compare, runs
from reproduce.config import TEST_CONFIG
from reproduce.errors import ConfigError, RunNotFoundError

# Its module fixtures are built once: every test of the module on one xdist worker.
pytestmark = pytest.mark.xdist_group("compare")

DATA = np.array([-3.0, -1.0, 1.0, 3.0])
# tf.summary.histogram(DATA * s, buckets=2) has buckets [-3s, 0, 2], [0, 3s, 2]:
# centres ±1.5s, so mean |g| = std = 1.5s; the tensor's norm is sqrt(20) s.
MEAN_ABS = STD = 1.5
NORM = math.sqrt(20.0)
STEPS = (0, 5, 10)
# Per run, per layer, the scale s of the gradient at each of STEPS.
SCALES = {
    "linear": {"dense_1": (1.0, 0.1, 0.01), "output": (2.0, 1.0, 0.5)},
    "relu": {"dense_1": (1.0, 1.5, 2.0), "output": (1.0, 1.0, 1.0)},
}
LAYERS = ("dense_1", "output")  # model order


def make_run(logdir, activation, steps=STEPS, scales=None, write_events=True):
    """A completed run folder whose train/ events hold gradients of known scales."""
    config = TEST_CONFIG.replace(activation=activation)
    run_dir = runs.run_dir(config, logdir)
    (run_dir / runs.TRAIN_DIR).mkdir(parents=True)
    (run_dir / runs.CONFIG_FILE).write_text(config.to_json())
    runs.write_marker(run_dir, runs.Marker(runs.RunStatus.COMPLETE, steps=steps[-1]))
    if write_events:
        scales = scales or SCALES[activation]
        writer = tf.summary.create_file_writer(str(run_dir / runs.TRAIN_DIR))
        with writer.as_default():
            for index, step in enumerate(steps):
                for layer in LAYERS:
                    scale = scales[layer][index]
                    tf.summary.histogram(f"gradients/{layer}/kernel", DATA * scale, step=step,
                                         buckets=2)
                    tf.summary.scalar(f"gradient_norm/{layer}/kernel", NORM * scale, step=step)
                    tf.summary.histogram(f"weights/{layer}/kernel", DATA, step=step, buckets=2)
        writer.close()
    return run_dir


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("logs")
    for activation in SCALES:
        make_run(logdir, activation)
    return logdir


@pytest.fixture(scope="module")
def comparison(logdir, tmp_path_factory):
    pattern = logdir / TEST_CONFIG.experiment / "moons" / "*"
    return compare.compare_runs([pattern], out_dir=tmp_path_factory.mktemp("figures"))


def test_runs_are_expanded_sorted_and_labelled(comparison):
    assert comparison.labels == ["moons/linear-d2-w8-s0-bs=16-ep=2-n=80",
                                 "moons/relu-d2-w8-s0-bs=16-ep=2-n=80"]
    assert comparison.tags == ["gradients/dense_1/kernel", "gradients/output/kernel"]
    assert comparison.steps == list(STEPS)
    assert comparison.notes == []


def test_table_values_match_the_fabricated_gradients(comparison):
    rows = {(row.run.split("/")[1].split("-")[0], row.tag.split("/")[1]): row
            for row in comparison.rows}
    assert len(rows) == 4
    for (activation, layer), row in rows.items():
        scales = np.array(SCALES[activation][layer])
        assert row.steps == list(STEPS)
        np.testing.assert_allclose(row.mean_abs, MEAN_ABS * scales, rtol=1e-12)
        np.testing.assert_allclose(row.std, STD * scales, rtol=1e-12)
        assert row.norm_first == pytest.approx(NORM * scales[0], rel=1e-6)  # a float32 scalar
        assert row.norm_last == pytest.approx(NORM * scales[-1], rel=1e-6)


def test_first_to_last_layer_norm_ratio(comparison):
    ratios = {ratio.run.split("/")[1].split("-")[0]: ratio for ratio in comparison.ratios}
    linear = ratios["linear"]
    assert (linear.first, linear.last) == ("dense_1/kernel", "output/kernel")
    np.testing.assert_allclose(linear.ratios, [0.5, 0.1, 0.02], rtol=1e-6)
    np.testing.assert_allclose(ratios["relu"].ratios, [1.0, 1.5, 2.0], rtol=1e-6)


def test_format_table_shows_each_layer_and_ratio(comparison):
    table = comparison.format_table()
    assert "2 runs compared at steps 0, 5, 10" in table
    assert "gradients/dense_1/kernel" in table and "gradients/output/kernel" in table
    ratio_section = table.split("gradient norm dense_1/kernel / output/kernel")[1].splitlines()
    assert ratio_section[1].split() == ["run", "@0", "@5", "@10"]
    assert ratio_section[2].split() == [
        "moons/linear-d2-w8-s0-bs=16-ep=2-n=80", "0.5", "0.1", "0.02"]


def test_to_json_is_the_same_table(comparison):
    data = json.loads(comparison.to_json())
    assert data["steps"] == list(STEPS)
    assert [row["mean_abs"] for row in data["rows"]] == [row.mean_abs for row in comparison.rows]
    assert data["gradient_norm_ratios"][0]["ratios"] == comparison.ratios[0].ratios


def test_figures_are_one_per_tag_plus_norms_and_decode(comparison):
    names = [path.name for path in comparison.figures]
    assert names == ["gradients__dense_1__kernel.png", "gradients__output__kernel.png",
                     compare.NORMS_FILE]
    for path in comparison.figures:
        image = matplotlib.image.imread(path)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
        assert image[..., :3].std() > 0  # something is drawn


def test_tag_globs_and_steps_select(logdir, tmp_path):
    run = logdir / TEST_CONFIG.experiment / "moons" / "relu-d2-w8-s0-bs=16-ep=2-n=80"
    comparison = compare.compare_runs([run], tags=["weights/*"], steps=[5], out_dir=tmp_path)
    assert comparison.tags == ["weights/dense_1/kernel", "weights/output/kernel"]
    assert comparison.steps == [5]
    assert comparison.rows[0].mean_abs == [MEAN_ABS]
    assert comparison.rows[0].norm_first is None  # no weight_norm scalar was written


def test_runs_with_different_steps_use_the_nearest_and_say_so(logdir, tmp_path):
    other = make_run(tmp_path / "logs", "tanh", steps=(0, 4, 10), scales=SCALES["relu"])
    linear = logdir / TEST_CONFIG.experiment / "moons" / "linear-d2-w8-s0-bs=16-ep=2-n=80"
    comparison = compare.compare_runs([linear, other], out_dir=tmp_path / "figures")
    assert comparison.steps == [0, 5, 10]  # first, middle and last of 0, 4, 5, 10
    tanh_rows = [row for row in comparison.rows if "tanh" in row.run]
    assert all(row.steps == [0, 4, 10] for row in tanh_rows)
    assert "moons/tanh-d2-w8-s0-bs=16-ep=2-n=80: step 5 not logged, used step 4" in comparison.notes


def test_default_out_dir_is_under_the_experiment(comparison, logdir):
    assert compare.choose_out_dir(comparison) == (
        logdir / TEST_CONFIG.experiment / compare.COMPARE_DIR
        / "moons-linear-d2-w8-s0-bs=16-ep=2-n=80_vs_moons-relu-d2-w8-s0-bs=16-ep=2-n=80")


def test_folder_without_runs_raises(tmp_path):
    with pytest.raises(RunNotFoundError, match="holds no run folder"):
        compare.compare_runs([tmp_path])


def test_no_matching_tag_raises(logdir):
    with pytest.raises(ConfigError, match=r"no histogram tag matches 'act\*'.*gradients/\*"):
        compare.compare_runs([logdir], tags=["act*"])


@pytest.fixture(scope="module")
def cli_results(logdir, tmp_path_factory):
    """`reproduce compare` on bad and good input, the processes run side by side."""
    root = tmp_path_factory.mktemp("cli")
    empty_run = make_run(root / "logs", "tanh", write_events=False)
    runs_glob = str(logdir / TEST_CONFIG.experiment / "moons" / "*")
    cases = {
        "no such run": [str(root / "missing-run")],
        "pattern matches nothing": [str(root / "logs" / "*-s9")],
        "no matching tags": [runs_glob, "--tags", "nothing/*"],
        "no events": [str(empty_run)],
        "json": [runs_glob, "--json", "--out", str(root / "figures")],
    }
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    processes = {
        name: subprocess.Popen([sys.executable, "-m", "reproduce.cli", "compare", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for name, args in cases.items()
    }
    return {name: (process, *process.communicate(timeout=300))
            for name, process in processes.items()}


@pytest.mark.parametrize("case, message", [
    ("no such run", "no run folder matches '.*missing-run'"),
    ("pattern matches nothing", r"no run folder matches '.*\*-s9'"),
    ("no matching tags", "no histogram tag matches 'nothing/\\*'"),
    ("no events", "no readable event files in train/ of .*tanh"),
])
def test_cli_bad_input_exits_2_with_one_error_line(cli_results, case, message):
    process, stdout, stderr = cli_results[case]
    assert process.returncode == 2, stderr
    assert "Traceback" not in stderr
    (line,) = stderr.splitlines()
    assert line.startswith("reproduce compare: error: ")
    assert re.search(message, line), line
    assert stdout == ""


def test_cli_json_prints_the_table(cli_results, comparison):
    process, stdout, stderr = cli_results["json"]
    assert process.returncode == 0, stderr
    data = json.loads(stdout)
    assert [row["mean_abs"] for row in data["rows"]] == [row.mean_abs for row in comparison.rows]
    assert len(data["figures"]) == 3
