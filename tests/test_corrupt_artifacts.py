"""Damaged run folders: each damaged file gives a warning naming it, the run (or
the part of it that needs the file) is left out, and `plot`, `report` and
`compare` still write their outputs for the other runs.

The event reader is also fed random bytes, random records and random
truncations and bit flips of a real event file (hypothesis): it never raises,
warns naming the file, and keeps every event before the damage.
"""

import dataclasses
import json
import os
import shutil
import struct
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

from reproduce import datasets, runs
from reproduce.compare import compare_runs
from reproduce.config import TEST_CONFIG
from reproduce.figures import FIGURES_DIR, LOSS_DROP_DIR, plot_experiment
from reproduce.report import write_report
from reproduce.runs import events

# Its module fixtures are built once: every test of the module on one xdist worker.
pytestmark = pytest.mark.xdist_group("corrupt_artifacts")

EXAMPLES = settings(max_examples=60, deadline=None)
# (activation, seed) of the undamaged runs.
GOOD = [("linear", 0), ("relu", 0), ("linear", 1)]


def largest_event_file(run_dir):
    return max(events.event_files(run_dir / runs.TRAIN_DIR), key=lambda path: path.stat().st_size)


def garble_events(run_dir):
    """Every training event file replaced by random bytes; returns the largest."""
    for path in events.event_files(run_dir / runs.TRAIN_DIR):
        path.write_bytes(os.urandom(path.stat().st_size))
    return largest_event_file(run_dir)


def truncate_events(run_dir):
    """Every training event file cut in half; returns the largest."""
    for path in events.event_files(run_dir / runs.TRAIN_DIR):
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return largest_event_file(run_dir)


def overwrite(name, content):
    def damage(run_dir):
        (run_dir / name).write_bytes(content)
        return run_dir / name
    return damage


def truncate(name):
    def damage(run_dir):
        data = (run_dir / name).read_bytes()
        (run_dir / name).write_bytes(data[: len(data) // 2])
        return run_dir / name
    return damage


def remove_config(run_dir):
    (run_dir / runs.CONFIG_FILE).unlink()
    return run_dir


# kind -> (activation of the run copied, damage(run_dir) -> the path a warning must name)
DAMAGES = {
    "events garbage": ("relu", garble_events),
    "events truncated": ("relu", truncate_events),
    "config not json": ("relu", overwrite(runs.CONFIG_FILE, b'{"depth": 2,')),
    "config not utf-8": ("relu", overwrite(runs.CONFIG_FILE, b"\xff\xfe\x00")),
    "config missing": ("relu", remove_config),
    "marker not json": ("relu", overwrite(runs.MARKER_FILE, b"{")),
    "marker without status": ("relu", overwrite(runs.MARKER_FILE, b"{}")),
    "history not json": ("linear", overwrite(runs.HISTORY_FILE, b"[1, 2")),
    "history wrong shape": ("linear", overwrite(runs.HISTORY_FILE, b'{"val_accuracy": 5}')),
    "model random bytes": ("linear", overwrite(runs.MODEL_FILE, os.urandom(4096))),
    "model truncated": ("linear", truncate(runs.MODEL_FILE)),
    "probe random bytes": ("linear", overwrite(runs.PROBE_FILE, os.urandom(512))),
}
UNREADABLE_RUN = ("config not json", "config not utf-8", "config missing", "marker not json",
                  "marker without status")
# Copies that are a configuration of their own, so that a decision boundary loads their model.
OWN_CONFIGURATION = ("model random bytes", "model truncated")


@pytest.fixture(scope="module")
def good_experiment(tmp_path_factory):
    """Three tiny real runs: linear seeds 0 and 1, relu seed 0."""
    from reproduce.training.trainer import train

    logdir = tmp_path_factory.mktemp("logs")
    for activation, seed in GOOD:
        train(TEST_CONFIG.replace(activation=activation, seed=seed), logdir, verbose=0)
    return runs.experiment_dir(logdir, TEST_CONFIG.experiment)


@pytest.fixture(scope="module")
def damaged_experiment(good_experiment, tmp_path_factory):
    """The good runs plus a damaged copy per kind; returns (experiment, kind -> (run, path)),
    paths relative to the experiment."""
    experiment = tmp_path_factory.mktemp("damaged") / TEST_CONFIG.experiment
    shutil.copytree(good_experiment, experiment)
    damaged = {}
    for index, (kind, (activation, damage)) in enumerate(DAMAGES.items()):
        changes = {"noise": 0.16 + index / 100} if kind in OWN_CONFIGURATION else {}
        config = TEST_CONFIG.replace(activation=activation, seed=10 + index, **changes)
        run_dir = runs.run_dir(config, experiment.parent)
        shutil.copytree(runs.run_dir(config.replace(seed=0, noise=TEST_CONFIG.noise),
                                     experiment.parent), run_dir)
        (run_dir / runs.CONFIG_FILE).write_text(config.to_json())
        # A copy trained "on" its own config's data, so that only the damage differs.
        runs.write_marker(run_dir, dataclasses.replace(
            runs.read_marker(run_dir),
            data_sha256=datasets.fingerprint(datasets.load_dataset(config))))
        damaged[kind] = (run_dir.relative_to(experiment),
                         damage(run_dir).relative_to(experiment))
    return experiment, damaged


@pytest.fixture
def experiment(damaged_experiment, tmp_path):
    """A fresh copy of the damaged experiment; returns (experiment, kind -> (run, path))."""
    source, damaged = damaged_experiment
    copy = tmp_path / source.name
    shutil.copytree(source, copy)
    return copy, {kind: (copy / run, copy / path) for kind, (run, path) in damaged.items()}


def assert_warned_naming(caught, damaged, kinds):
    messages = "\n".join(str(warning.message) for warning in caught)
    assert [kind for kind in kinds if str(damaged[kind][1]) not in messages] == [], messages


def run_names(damaged, kinds):
    """The names of the good runs and of the damaged copies of `kinds`."""
    names = {runs.run_name(TEST_CONFIG.replace(activation=activation, seed=seed))
             for activation, seed in GOOD}
    return names | {"/".join(damaged[kind][0].parts[-2:]) for kind in kinds}


def test_plot_draws_every_readable_run_and_names_each_damaged_file(experiment):
    experiment, damaged = experiment
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = set(plot_experiment(experiment, jobs=1))
    not_plotted = (*UNREADABLE_RUN, "events garbage")
    assert_warned_naming(caught, damaged, [*not_plotted, "events truncated",
                                           "model random bytes", "model truncated"])
    plotted = [kind for kind in DAMAGES if kind not in not_plotted]
    groups = {runs.group_name(TEST_CONFIG.replace(activation=activation))
              for activation, _ in GOOD}
    groups |= {runs.group_name(runs.load_config(damaged[kind][0])) for kind in plotted}
    loss_drop = experiment / FIGURES_DIR / LOSS_DROP_DIR
    assert {path for path in written if path.is_relative_to(loss_drop)} == {
        loss_drop / f"{group}.png" for group in groups}
    assert experiment / FIGURES_DIR / "boundary_moons.png" in written
    assert all(path.stat().st_size for path in written)


def test_report_uses_every_readable_run_and_names_each_damaged_file(experiment):
    experiment, damaged = experiment
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        markdown, data = write_report(experiment)
    assert_warned_naming(caught, damaged, [
        "events garbage", "events truncated", *UNREADABLE_RUN, "history not json",
        "history wrong shape", "model random bytes", "model truncated", "probe random bytes"])
    assert markdown.read_text().startswith("#")
    report = json.loads(data.read_text())
    readable = [kind for kind in DAMAGES if kind not in UNREADABLE_RUN]
    assert {run["name"] for run in report["runs"]} == run_names(damaged, readable)


def test_compare_tabulates_every_run_with_events_and_names_each_damaged_file(experiment):
    experiment, damaged = experiment
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        comparison = compare_runs([experiment / "moons" / "*"], out_dir=experiment / "compare")
    assert_warned_naming(caught, damaged, ["events garbage", "events truncated", "config missing"])
    with_events = [kind for kind in DAMAGES if kind not in ("events garbage", "config missing")]
    assert set(comparison.labels) == run_names(damaged, with_events)
    assert comparison.figures and all(path.stat().st_size for path in comparison.figures)


# ---------------------------------------------------------------------------
# The event reader under random damage


@pytest.fixture(scope="module")
def real_event_file(good_experiment, tmp_path_factory):
    """The bytes of a real run's training event file and each record's (offset, end)."""
    path = largest_event_file(runs.run_dir(TEST_CONFIG.replace(activation="linear"),
                                           good_experiment.parent))
    scratch = tmp_path_factory.mktemp("real") / path.name
    shutil.copyfile(path, scratch)  # alone in its folder
    data = scratch.read_bytes()
    records = [(offset, offset + 12 + len(record) + 4)  # 12-byte header, 4-byte footer
               for offset, record in events.iter_records(scratch)]
    assert records[-1][1] == len(data)
    return data, records, events.read_events(scratch.parent)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("scratch")


def read_bytes_as_events(folder, data):
    """Writes `data` as the only event file in `folder`; returns (EventData, warning texts)."""
    folder.mkdir(exist_ok=True)
    path = folder / "events.out.tfevents.0.damaged"
    path.write_bytes(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read = events.read_events(folder)
    return read, path, [str(warning.message) for warning in caught
                        if issubclass(warning.category, events.CorruptEventFileWarning)]


@EXAMPLES
@given(data=st.binary(min_size=1, max_size=2000))
def test_random_bytes_never_raise_and_warn_naming_the_file(scratch, data):
    read, path, warned = read_bytes_as_events(scratch / "random", data)
    assert read.event_count == 0
    assert len(warned) == 1 and str(path) in warned[0]


def frame(payload: bytes) -> bytes:
    """`payload` as a TFRecord with a valid header; the data CRC is left wrong."""
    length = struct.pack("<Q", len(payload))
    return length + struct.pack("<I", masked_crc32c(length)) + payload + b"\0\0\0\0"


@EXAMPLES
@given(payloads=st.lists(st.binary(max_size=200), min_size=1, max_size=8))
def test_random_records_never_raise(scratch, payloads):
    read, path, warned = read_bytes_as_events(scratch / "records",
                                              b"".join(map(frame, payloads)))
    assert read.event_count <= len(payloads)
    if read.event_count < len(payloads):
        assert len(warned) == 1 and str(path) in warned[0]


@EXAMPLES
@given(fraction=st.floats(0, 1, exclude_max=True))
def test_truncation_keeps_every_event_before_the_cut(scratch, real_event_file, fraction):
    data, records, full = real_event_file
    cut = int(fraction * len(data))
    read, path, warned = read_bytes_as_events(scratch / "truncated", data[:cut])
    assert read.event_count == sum(end <= cut for _, end in records)
    at_boundary = cut in {end for _, end in records} | {0}
    assert warned == [] if at_boundary else (len(warned) == 1 and str(path) in warned[0])
    for tag, scalars in read.scalars.items():
        assert scalars.values.tolist() == full.scalars[tag].values[:len(scalars.values)].tolist()
    for tag, histograms in read.histograms.items():
        kept = len(histograms.steps)
        assert histograms.steps.tolist() == full.histograms[tag].steps[:kept].tolist()


@EXAMPLES
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)),
                      min_size=1, max_size=4))
def test_flipped_bytes_never_raise_and_keep_the_events_before_them(scratch, real_event_file,
                                                                   flips):
    data, records, _ = real_event_file
    damaged = bytearray(data)
    positions = [int(fraction * len(data)) for fraction, _ in flips]
    for position, (_, mask) in zip(positions, flips):
        damaged[position] ^= mask
    read, path, warned = read_bytes_as_events(scratch / "flipped", bytes(damaged))
    assert read.event_count >= sum(end <= min(positions) for _, end in records)
    if read.event_count < len(records):
        assert len(warned) == 1 and str(path) in warned[0]


def test_scalar_of_a_dtype_without_numpy_type_is_named_not_raised(scratch):
    # A flipped byte once made a scalar's dtype 121 (variant_ref), which has no numpy type.
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2
    from tensorboard.plugins.scalar import metadata

    value = summary_pb2.Summary.Value(tag="loss", tensor=tensor_pb2.TensorProto(dtype=121))
    value.metadata.CopyFrom(metadata.create_summary_metadata(display_name="", description=""))
    event = event_pb2.Event(step=1, summary=summary_pb2.Summary(value=[value]))
    read, path, warned = read_bytes_as_events(scratch / "dtype",
                                              frame_with_crc(event.SerializeToString()))
    assert read.event_count == 1 and "loss" not in read.scalars
    assert len(warned) == 1 and "unreadable value of tag 'loss'" in warned[0]


def frame_with_crc(payload: bytes) -> bytes:
    length = struct.pack("<Q", len(payload))
    return (length + struct.pack("<I", masked_crc32c(length)) + payload
            + struct.pack("<I", masked_crc32c(payload)))
