"""Tests of reproduce.figures: TensorBoard's smoothing, loss curves read back, figures written."""

import dataclasses
import json
import shutil

import numpy as np
import pytest
import tensorflow as tf
from matplotlib import image as mpimg

from callbacks import tags
from reproduce import runs
from reproduce.config import TEST_CONFIG, RunConfig
from reproduce.errors import RunNotFoundError
from reproduce.figures import FIGURES_DIR, load_loss_curves, plot_experiment, smooth
from reproduce.runs import events

# Its module fixtures are built once: every test of the module on one xdist worker.
pytestmark = pytest.mark.xdist_group("plots")

# Binary fractions, exact in the float32 of a summary, so the curves compare exactly.
SEED_0_BATCH = [1.0, 0.75, 0.5, 0.5, 0.25, 0.25]
SEED_1_BATCH = [0.5, 0.5, 0.25, 0.125, 0.125, 0.0]
SEED_0_VALIDATION = [0.75, 0.5]
SEED_1_VALIDATION = [0.5, 0.25]
FABRICATED = RunConfig(experiment="exp", dataset="moons", activation="linear", epochs=2)
FABRICATED_GROUP = "moons/linear-d4-w32-ep=2"
TINY_GROUPS = ("moons/linear-d2-w8-bs=16-ep=2-n=80", "moons/relu-d2-w8-bs=16-ep=2-n=80")


def test_smooth_matches_tensorboard_by_hand():
    # last: 0.4*1 = 0.4, 0.6*0.4 + 0.4*2 = 1.04, 0.6*1.04 + 0.4*3 = 1.824;
    # debias: 1 - 0.6 = 0.4, 1 - 0.36 = 0.64, 1 - 0.216 = 0.784.
    np.testing.assert_allclose(smooth([1, 2, 3], 0.6),
                               [0.4 / 0.4, 1.04 / 0.64, 1.824 / 0.784])
    assert smooth([1, 2, 3], 0.6)[2] == pytest.approx(2.3265306122)


def test_smooth_with_weight_zero_returns_the_values():
    np.testing.assert_array_equal(smooth([3.0, 1.0, 2.0], 0.0), [3.0, 1.0, 2.0])


def test_smooth_passes_non_finite_values_through_without_counting_them():
    # The 3 is only the second finite value: (0.6*0.4 + 0.4*3) / (1 - 0.6**2) = 2.25.
    np.testing.assert_allclose(smooth([1.0, np.nan, 3.0, np.inf], 0.6),
                               [1.0, np.nan, 2.25, np.inf])


def test_smooth_leaves_a_constant_series_alone():
    np.testing.assert_array_equal(smooth([0.7] * 5, 0.9), [0.7] * 5)


def write_fabricated_run(logdir, seed, batch_losses, validation_losses,
                         status=runs.STATUS_COMPLETE):
    """Writes a run folder as `train.train` lays it out, with known losses and no model."""
    config = FABRICATED.replace(seed=seed)
    path = runs.run_dir(config, logdir)
    path.mkdir(parents=True)
    (path / runs.CONFIG_FILE).write_text(config.to_json())
    for folder, tag, values, first_step in (
        (runs.TRAIN_DIR, tags.BATCH_LOSS, batch_losses, 1),  # optimizer steps count from 1
        (runs.VALIDATION_DIR, tags.EPOCH_LOSS, validation_losses, 0),  # Keras's epoch index
    ):
        writer = tf.summary.create_file_writer(str(path / folder))
        with writer.as_default():
            for step, value in enumerate(values, start=first_step):
                tf.summary.scalar(tag, value, step=step)
        writer.close()
    (path / runs.HISTORY_FILE).write_text(json.dumps({"val_loss": validation_losses}))
    runs.write_marker(path, runs.Marker(runs.RunStatus(status), steps=len(batch_losses),
                                        epochs=len(validation_losses)))
    return path


def as_runs(*paths):
    return [runs.Run(path) for path in paths]


@pytest.fixture
def fabricated(tmp_path):
    """Two seeds of one configuration under `<tmp>/exp`; returns their run folders."""
    return [
        write_fabricated_run(tmp_path, 0, SEED_0_BATCH, SEED_0_VALIDATION),
        write_fabricated_run(tmp_path, 1, SEED_1_BATCH, SEED_1_VALIDATION),
    ]


def test_loss_curves_are_the_values_written(fabricated):
    groups = load_loss_curves(as_runs(*fabricated), weight=0.0)
    assert list(groups) == [FABRICATED_GROUP]
    seed_0, seed_1 = groups[FABRICATED_GROUP].runs
    assert (seed_0.config.seed, seed_1.config.seed) == (0, 1)
    np.testing.assert_array_equal(seed_0.steps, [1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(seed_0.batch_loss, SEED_0_BATCH)
    np.testing.assert_array_equal(seed_1.batch_loss, SEED_1_BATCH)
    # 6 steps over 2 epochs: epoch e's validation sits at the end of its 3 steps.
    np.testing.assert_array_equal(seed_0.validation_steps, [3, 6])
    np.testing.assert_array_equal(seed_1.validation_loss, SEED_1_VALIDATION)


def test_group_mean_and_band_across_seeds(fabricated):
    group = load_loss_curves(as_runs(*fabricated), weight=0.0)[FABRICATED_GROUP]
    np.testing.assert_array_equal(group.steps, [1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(group.mean, [0.75, 0.625, 0.375, 0.3125, 0.1875, 0.125])
    np.testing.assert_array_equal(group.low, SEED_1_BATCH)
    np.testing.assert_array_equal(group.high, SEED_0_BATCH)
    assert group.title == "moons / linear (d4-w32-ep=2), 2 seeds"


def test_group_mean_is_of_the_smoothed_curves(fabricated):
    group = load_loss_curves(as_runs(*fabricated), weight=0.6)[FABRICATED_GROUP]
    # First step: each debiased average is the value itself, (1.0 + 0.5) / 2.
    assert group.mean[0] == pytest.approx(0.75)
    # Second step: seed 0 (0.24 + 0.3) / 0.64, seed 1 (0.12 + 0.2) / 0.64.
    assert group.mean[1] == pytest.approx((0.54 / 0.64 + 0.32 / 0.64) / 2)


def test_diverged_seed_is_kept_but_left_out_of_the_mean(tmp_path, fabricated):
    diverged = write_fabricated_run(tmp_path, 2, [1.0, 4.0, float("nan")], [float("nan")],
                                    status=runs.STATUS_DIVERGED)
    group = load_loss_curves(as_runs(*fabricated, diverged), weight=0.0)[FABRICATED_GROUP]
    assert [curves.diverged for curves in group.runs] == [False, False, True]
    np.testing.assert_array_equal(group.runs[2].steps, [1, 2, 3])
    np.testing.assert_array_equal(group.mean, [0.75, 0.625, 0.375, 0.3125, 0.1875, 0.125])


def test_incomplete_run_is_skipped_with_a_warning(fabricated):
    (fabricated[1] / runs.MARKER_FILE).unlink()
    with pytest.warns(UserWarning, match="skipping incomplete run .*s1-ep=2"):
        assert runs.load_runs(fabricated[0].parent.parent) == [runs.Run(fabricated[0])]


def test_empty_experiment_raises_run_not_found(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunNotFoundError, match=r"no completed runs in .*empty: no run folder"):
        plot_experiment(tmp_path / "empty")


@pytest.fixture(scope="module")
def tiny_experiment(tmp_path_factory):
    """A trained TEST_CONFIG experiment with a linear and a relu run; returns its folder."""
    from reproduce.training.trainer import train

    logdir = tmp_path_factory.mktemp("logs")
    for activation in ("linear", "relu"):
        train(TEST_CONFIG.replace(activation=activation), logdir, verbose=0)
    return logdir / TEST_CONFIG.experiment


def expected_images(experiment_dir):
    """Maps each PNG that plotting `experiment_dir` must write to its image tag."""
    figures = experiment_dir / FIGURES_DIR
    return {
        **{figures / "loss_drop" / f"{group}.png": f"loss_drop/{group}" for group in TINY_GROUPS},
        figures / "overview.png": "overview",
        figures / "overlay_moons.png": "overlay_moons",
        figures / "boundary_moons.png": "boundary_moons",
    }


def test_plot_experiment_writes_every_figure_as_png_and_image_summary(tiny_experiment):
    written = plot_experiment(tiny_experiment)
    expected = expected_images(tiny_experiment)
    assert set(written) == set(expected) and len(written) == len(expected)
    for path in written:
        height, width, channels = mpimg.imread(path).shape
        assert height > 100 and width > 100 and channels == 4, path
    figures = events.read_events(tiny_experiment / FIGURES_DIR)
    assert figures.plugin_tags == {"images": set(expected.values())}


def test_plotting_again_replaces_the_image_summaries(tiny_experiment):
    plot_experiment(tiny_experiment)
    plot_experiment(tiny_experiment)
    figures = tiny_experiment / FIGURES_DIR
    assert len(events.event_files(figures)) == 1
    assert events.read_events(figures).plugin_tags["images"] == set(
        expected_images(tiny_experiment).values())


def test_diverged_run_is_still_plotted(tiny_experiment, tmp_path):
    experiment = shutil.copytree(tiny_experiment, tmp_path / "copy")
    linear = experiment / runs.run_name(TEST_CONFIG)
    runs.write_marker(linear, dataclasses.replace(
        runs.read_marker(linear), status=runs.RunStatus.DIVERGED, diverged_at_step=5))
    written = plot_experiment(experiment)
    assert set(written) == set(expected_images(experiment))
    group = load_loss_curves(as_runs(linear))[runs.group_name(TEST_CONFIG)]
    assert group.runs[0].diverged and group.mean is None
    assert group.runs[0].divergence_label == "seed 0 diverged at step 5"
