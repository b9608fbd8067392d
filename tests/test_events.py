import io
import math
import re
import shutil
import warnings

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import summary_v2 as hp
from tensorboard.summary.writer.record_writer import RecordWriter

from reproduce import runs
from reproduce.config import TEST_CONFIG
from reproduce.errors import RunNotFoundError
from reproduce.runs import events

# Its module fixtures are built once: every test of the module on one xdist worker.
pytestmark = pytest.mark.xdist_group("events")

LOSSES = [0.75, 0.5, 0.25, 0.125, 0.0625]  # exact in float32
HISTOGRAM_DATA = [0.0, 1.0, 2.0, 3.0]
# tf.summary.histogram of HISTOGRAM_DATA with 3 buckets: edges split [0, 3]
# evenly, the last bucket closed, so 3 joins 2 in it.
HISTOGRAM_BUCKETS = [[0.0, 1.0, 1.0], [1.0, 2.0, 1.0], [2.0, 3.0, 2.0]]


def write_summaries(folder):
    """Writes LOSSES as `loss` at steps 0-4, a histogram at steps 0 and 4, and other plugins."""
    writer = tf.summary.create_file_writer(str(folder))
    with writer.as_default():
        for step, loss in enumerate(LOSSES):
            tf.summary.scalar("loss", loss, step=step)
        for step in (0, 4):
            tf.summary.histogram("weights", HISTOGRAM_DATA, step=step, buckets=3)
        tf.summary.text("notes", "a note", step=0)
        tf.summary.image("picture", np.zeros((1, 2, 2, 1), np.float32), step=0)
        hp.hparams({"activation": "relu"})
    writer.close()
    (path,) = events.event_files(folder)
    return path


@pytest.fixture(scope="module")
def event_file(tmp_path_factory):
    return write_summaries(tmp_path_factory.mktemp("summaries"))


@pytest.fixture
def copy_of(event_file, tmp_path):
    """A copy of the module's event file alone in a fresh folder."""
    path = tmp_path / event_file.name
    shutil.copyfile(event_file, path)
    return path


def offset_of_loss(path, step):
    """Byte offset of the record holding `loss` at `step`."""
    for offset, record in events.iter_records(path):
        event = event_pb2.Event.FromString(record)
        if event.step == step and any(value.tag == "loss" for value in event.summary.value):
            return offset
    raise AssertionError(f"no loss at step {step}")


def frame(data: bytes) -> bytes:
    """`data` as one TFRecord with valid CRCs."""
    buffer = io.BytesIO()
    RecordWriter(buffer).write(data)
    return buffer.getvalue()


def test_scalars_read_back_exact_values_and_steps(event_file):
    loss = events.read_events(event_file.parent).scalars["loss"]
    np.testing.assert_array_equal(loss.steps, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(loss.values, LOSSES)
    assert loss.at(3) == 0.125


def test_histograms_read_back_exact_buckets_and_steps(event_file):
    histograms = events.read_events(event_file.parent).histograms["weights"]
    np.testing.assert_array_equal(histograms.steps, [0, 4])
    np.testing.assert_array_equal(histograms.at(4), HISTOGRAM_BUCKETS)


def test_plugin_tags_list_the_other_plugins(event_file):
    data = events.read_events(event_file.parent)
    assert data.plugin_tags == {
        "text": {"notes"},
        "images": {"picture"},
        "hparams": {"_hparams_/session_start_info"},
    }
    assert data.tags == {"loss", "weights"}


def test_every_event_is_read_without_sampling(tmp_path):
    steps = 2500  # more than TensorBoard keeps of a scalar (1000) or histogram (500) by default
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        for step in range(steps):
            tf.summary.scalar("loss", float(step), step=step)
    writer.close()
    loss = events.read_events(tmp_path).scalars["loss"]
    np.testing.assert_array_equal(loss.steps, np.arange(steps))
    np.testing.assert_array_equal(loss.values, np.arange(steps))


def test_repeated_step_keeps_both_in_order_and_at_returns_the_last(tmp_path):
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        for value in (1.0, 2.0):
            tf.summary.scalar("loss", value, step=7)
    writer.close()
    loss = events.read_events(tmp_path).scalars["loss"]
    np.testing.assert_array_equal(loss.values, [1.0, 2.0])
    assert loss.at(7) == 2.0


def test_tf1_simple_value_and_histo_are_read(tmp_path):
    histo = summary_pb2.HistogramProto(min=-1.0, max=3.0, num=4, bucket_limit=[1.0, 3.0],
                                       bucket=[1.0, 3.0])
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="loss", simple_value=0.5),
                                         summary_pb2.Summary.Value(tag="h", histo=histo)])
    (tmp_path / "events.out.tfevents.1.legacy").write_bytes(
        frame(event_pb2.Event(step=3, summary=summary).SerializeToString()))
    data = events.read_events(tmp_path)
    assert data.scalars["loss"].at(3) == 0.5
    np.testing.assert_array_equal(data.histograms["h"].at(3), [[-1, 1, 1], [1, 3, 3]])


def test_truncated_file_warns_naming_it_and_keeps_earlier_events(copy_of):
    # Cut inside the record of step 2: steps 0 and 1 survive.
    copy_of.write_bytes(copy_of.read_bytes()[:offset_of_loss(copy_of, 2) + 14])
    with pytest.warns(events.CorruptEventFileWarning, match=re.escape(str(copy_of))):
        loss = events.read_events(copy_of.parent).scalars["loss"]
    np.testing.assert_array_equal(loss.values, LOSSES[:2])


def test_garbage_appended_warns_and_keeps_every_event(copy_of):
    with open(copy_of, "ab") as handle:
        handle.write(b"\x07garbage that is not a record" * 3)
    with pytest.warns(events.CorruptEventFileWarning, match=re.escape(str(copy_of))):
        data = events.read_events(copy_of.parent)
    np.testing.assert_array_equal(data.scalars["loss"].values, LOSSES)
    np.testing.assert_array_equal(data.histograms["weights"].steps, [0, 4])


def test_undecodable_record_in_the_middle_is_skipped(copy_of):
    data = copy_of.read_bytes()
    middle = offset_of_loss(copy_of, 2)
    copy_of.write_bytes(data[:middle] + frame(b"\xff\xff\xff\xff") + data[middle:])
    with pytest.warns(events.CorruptEventFileWarning, match="undecodable event"):
        loss = events.read_events(copy_of.parent).scalars["loss"]
    np.testing.assert_array_equal(loss.values, LOSSES)


def test_several_problems_in_one_file_give_one_warning_and_others_read(copy_of, event_file):
    data = copy_of.read_bytes()
    middle = offset_of_loss(copy_of, 2)
    copy_of.write_bytes(data[:middle] + frame(b"\xff\xff") + data[middle:-3])
    intact = copy_of.parent / "events.out.tfevents.2.intact"
    shutil.copyfile(event_file, intact)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loss = events.read_events(copy_of.parent).scalars["loss"]
    assert len(caught) == 1 and issubclass(caught[0].category, events.CorruptEventFileWarning)
    assert str(copy_of) in str(caught[0].message) and "1 more problem" in str(caught[0].message)
    # The damaged copy lost its last record only; the intact file gave everything.
    assert len(loss.values) == 2 * len(LOSSES)


def test_missing_folder_reads_as_empty(tmp_path):
    data = events.read_events(tmp_path / "nothing")
    assert (data.scalars, data.histograms, data.plugin_tags, data.event_count) == ({}, {}, {}, 0)


def make_run(logdir, seed):
    config = TEST_CONFIG.replace(seed=seed)
    run_dir = runs.run_dir(config, logdir)
    (run_dir / runs.TRAIN_DIR).mkdir(parents=True)
    (run_dir / runs.CONFIG_FILE).write_text(config.to_json())
    write_summaries(run_dir / runs.TRAIN_DIR)
    return run_dir


def test_read_experiment_reads_every_run(tmp_path):
    run_dirs = [make_run(tmp_path, seed) for seed in (1, 0)]
    experiment = runs.read_experiment(tmp_path / TEST_CONFIG.experiment)
    assert list(experiment) == sorted(run_dirs)
    for run_dir, run in experiment.items():
        assert run.path == run_dir
        np.testing.assert_array_equal(run.train.scalars["loss"].values, LOSSES)
        assert run.validation.event_count == 0


def test_read_experiment_without_runs_raises(tmp_path):
    with pytest.raises(RunNotFoundError, match="no run folder"):
        runs.read_experiment(tmp_path)
    with pytest.raises(RunNotFoundError, match="no such folder"):
        runs.read_experiment(tmp_path / "missing")


def test_summarize_histogram_uses_bucket_centres():
    stats = events.summarize_histogram([[0, 2, 1], [2, 4, 3]])  # centres 1 and 3
    assert stats.count == 4
    assert stats.mean == 2.5  # (1 + 3 * 3) / 4
    assert stats.std == pytest.approx(math.sqrt(0.75))  # (1.5² + 3 * 0.5²) / 4
    assert stats.mean_abs == 2.5


def test_summarize_histogram_mean_abs_of_signed_values():
    stats = events.summarize_histogram([[-4, -2, 2], [2, 4, 2]])  # centres -3 and 3
    assert (stats.mean, stats.std, stats.mean_abs) == (0.0, 3.0, 3.0)


def test_summarize_histogram_of_constant_data():
    # As tf.summary.histogram writes a constant: left == right, the count in the last bucket.
    stats = events.summarize_histogram([[-0.5, -0.5, 0], [-0.5, -0.5, 7]])
    assert (stats.count, stats.mean, stats.std, stats.mean_abs) == (7, -0.5, 0.0, 0.5)


def test_summarize_empty_histogram_is_nan():
    stats = events.summarize_histogram(np.zeros((0, 3)))
    assert stats.count == 0 and math.isnan(stats.mean) and math.isnan(stats.mean_abs)
