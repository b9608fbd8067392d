"""The private TensorFlow API is used only on verified versions, and it changes no result."""

import json

import numpy as np
import tensorflow as tf
from tensorflow.python import pywrap_tfe

from reproduce import runs
from reproduce.training import model_cache, tf_internals
from reproduce.training.trainer import train
from test_reuse import BEFORE, CONFIG, logged_values


def test_the_installed_tensorflow_and_keras_are_verified():
    installed = tf_internals.installed_versions()
    unverified = {name: version for name, version in installed.items()
                  if version not in tf_internals.VERIFIED[name]}
    assert not unverified, (
        f"{unverified} not in tf_internals.VERIFIED {tf_internals.VERIFIED}: runs on a reused "
        f"model now clear TensorFlow's kernel cache (slower). If this module's tests pass, add "
        f"the versions to VERIFIED")
    assert tf_internals.keeps_kernel_cache()


def count_cache_clears(monkeypatch) -> list:
    clears = []
    clear_caches = pywrap_tfe.TFE_ContextClearCaches
    monkeypatch.setattr(pywrap_tfe, "TFE_ContextClearCaches",
                        lambda handle: clears.append(handle) or clear_caches(handle))
    return clears


def test_seeding_keeps_the_kernel_cache_only_on_verified_versions(monkeypatch):
    tf.zeros(1)  # starts the eager context: seeding clears its caches from then on
    clears = count_cache_clears(monkeypatch)
    tf_internals.set_random_seed(1)
    assert clears == []
    monkeypatch.setitem(tf_internals.VERIFIED, "keras", ())
    assert not tf_internals.keeps_kernel_cache()
    tf_internals.set_random_seed(1)
    assert len(clears) == 1


def train_reused(logdir):
    """BEFORE, then CONFIG on the model BEFORE traced; returns CONFIG's run folder."""
    model_cache.clear()
    try:
        train(BEFORE, logdir, verbose=0, reuse_models=True)
        return train(CONFIG, logdir, verbose=0, reuse_models=True).run_dir
    finally:
        model_cache.clear()


def test_plain_seeding_trains_the_guarded_runs_bit_for_bit(tmp_path, monkeypatch):
    assert tf_internals.keeps_kernel_cache()
    guarded = train_reused(tmp_path / "guarded")
    monkeypatch.setattr(tf_internals, "VERIFIED", {})
    plain = train_reused(tmp_path / "plain")

    assert json.loads((guarded / runs.HISTORY_FILE).read_text()) == json.loads(
        (plain / runs.HISTORY_FILE).read_text())
    assert logged_values(guarded) == logged_values(plain)
    for guarded_weights, plain_weights in zip(runs.load_model(guarded).get_weights(),
                                              runs.load_model(plain).get_weights(), strict=True):
        np.testing.assert_array_equal(guarded_weights, plain_weights)
