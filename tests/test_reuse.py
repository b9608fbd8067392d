"""A run's results never depend on whether it trained on a reused, already traced model."""

import json

import keras
import numpy as np
import pytest

from conftest import run_cli
from reproduce import datasets, execution, runs
from reproduce.config import INITIALIZERS, TEST_CONFIG, trace_key
from reproduce.runs import events
from reproduce.training import model_cache, models
from reproduce.training.trainer import train

CONFIG = TEST_CONFIG.replace(activation="tanh", seed=3)
# Another run with the same trace key: other data, other seed, other epochs.
BEFORE = TEST_CONFIG.replace(activation="tanh", dataset="circles", seed=1, epochs=3)


def logged_values(run_dir) -> dict:
    """Every scalar and histogram of the run's events, by folder and tag."""
    values = {}
    for folder in (runs.TRAIN_DIR, runs.VALIDATION_DIR):
        read = events.read_events(run_dir / folder)
        values.update({(folder, tag): (series.steps.tolist(), series.values.tolist())
                       for tag, series in read.scalars.items()})
        values.update({(folder, tag): (series.steps.tolist(),
                                       [buckets.tolist() for buckets in series.buckets])
                       for tag, series in read.histograms.items()})
    return values


def test_reused_model_gives_the_fresh_run_bit_for_bit(tmp_path):
    assert trace_key(BEFORE) == trace_key(CONFIG)
    fresh = run_cli("train", "--experiment", "test", "--activation", "tanh", "--seed", "3",
                    "--depth", "2", "--width", "8", "--batch-size", "16", "--epochs", "2",
                    "--samples", "80", "--steps-per-execution", "4", "--probe-size", "32",
                    "--quiet", "--logdir", tmp_path / "fresh")
    assert fresh.returncode == 0, fresh.stderr
    fresh_dir = runs.run_dir(CONFIG, tmp_path / "fresh")

    model_cache.clear()
    train(BEFORE, tmp_path / "reused", verbose=0, reuse_models=True)
    first_model = model_cache.prepare_model(BEFORE, 2, 2)
    reused = train(CONFIG, tmp_path / "reused", verbose=0, reuse_models=True)
    assert model_cache.prepare_model(CONFIG, 2, 2) is first_model  # one model served both

    assert json.loads((reused.run_dir / runs.HISTORY_FILE).read_text()) == json.loads(
        (fresh_dir / runs.HISTORY_FILE).read_text())
    fresh_values, reused_values = logged_values(fresh_dir), logged_values(reused.run_dir)
    assert fresh_values.keys() == reused_values.keys()
    assert fresh_values == reused_values  # batch losses, gradients, weights, activations
    for fresh_weights, reused_weights in zip(runs.load_model(fresh_dir).get_weights(),
                                             runs.load_model(reused.run_dir).get_weights(),
                                             strict=True):
        np.testing.assert_array_equal(fresh_weights, reused_weights)


def test_runs_of_one_trace_key_go_to_one_worker():
    configs = execution.load_sweep().configs()
    assignment = execution.assign_workers(configs, 2)
    workers_of = {}
    for config, worker in zip(configs, assignment):
        workers_of.setdefault(trace_key(config), set()).add(worker)
    assert len(workers_of) == 10  # 5 activations x (2-D sets, digits)
    assert all(len(workers) == 1 for workers in workers_of.values())
    assert set(assignment) == {0, 1}


@pytest.mark.parametrize("changes", [
    *({"initializer": name} for name in INITIALIZERS),
    {"initializer": "normal", "init_scale": 1e-3, "use_bias": False, "dataset": "saxe",
     "samples": None},
    {"initializer": "he_normal", "init_scale": 2.0, "dataset": "digits", "samples": None},
    {"mixed_precision": True},
], ids=lambda changes: ",".join(f"{key}={value}" for key, value in changes.items()))
def test_a_reused_model_starts_from_the_weights_a_fresh_one_would(changes):
    first, second = (TEST_CONFIG.replace(**changes, seed=seed) for seed in (1, 2))
    dataset = datasets.load_dataset(second)
    shapes = (dataset.input_dim, dataset.n_classes)
    model_cache.clear()
    keras.mixed_precision.set_global_policy("mixed_float16" if second.mixed_precision
                                            else "float32")
    try:
        model = model_cache.prepare_model(first, *shapes)
        assert model_cache.prepare_model(second, *shapes) is model
        fresh = models.build_model(second, *shapes)
        for reused, expected in zip(model.weights, fresh.weights, strict=True):
            assert reused.path.split("/")[-2:] == expected.path.split("/")[-2:]
            np.testing.assert_array_equal(reused.numpy(), expected.numpy())
            assert reused.dtype == expected.dtype
    finally:
        keras.mixed_precision.set_global_policy("float32")
        model_cache.clear()
