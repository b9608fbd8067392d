"""The one reader of TensorBoard event files: every event, nothing sampled.

Reads TF2 summaries (scalars and histograms stored as tensors, legacy
`simple_value` scalars too) straight from the TFRecord framing, without
TensorFlow and without TensorBoard's reservoir sampling. A truncated or
corrupt file (a crash mid-write) gives a warning naming the file; everything
before the damage is kept.
"""

from __future__ import annotations

import dataclasses
import struct
import warnings
from pathlib import Path

import numpy as np
from google.protobuf.message import DecodeError
from tensorboard.compat.proto import event_pb2
from tensorboard.util import tensor_util

from reproduce import runs

SCALARS_PLUGIN = "scalars"
HISTOGRAMS_PLUGIN = "histograms"
HPARAMS_PLUGIN = "hparams"
EVENT_FILE_GLOB = "events.out.tfevents.*"
_HEADER = struct.Struct("<QI")  # record length, masked CRC of the length
_FOOTER_BYTES = 4  # masked CRC of the data


class CorruptEventFileWarning(UserWarning):
    """An event file ends in a partial record or holds an unreadable one."""


@dataclasses.dataclass
class Scalars:
    """One scalar tag: values in step order (stable for repeated steps)."""

    steps: np.ndarray  # int64
    values: np.ndarray  # float64
    wall_times: np.ndarray  # float64 seconds since the epoch

    def at(self, step: int) -> float:
        """Returns the last value written at `step`."""
        matches = np.flatnonzero(self.steps == step)
        if not len(matches):
            raise KeyError(f"no value at step {step}")
        return float(self.values[matches[-1]])


@dataclasses.dataclass
class Histograms:
    """One histogram tag: per step, an array of buckets `[left, right, count]`."""

    steps: np.ndarray  # int64
    buckets: list[np.ndarray]  # each of shape (k, 3)

    def at(self, step: int) -> np.ndarray:
        """Returns the last histogram written at `step`."""
        matches = np.flatnonzero(self.steps == step)
        if not len(matches):
            raise KeyError(f"no histogram at step {step}")
        return self.buckets[matches[-1]]


@dataclasses.dataclass
class EventData:
    """Everything read from the event files of one folder (one TensorBoard run)."""

    scalars: dict[str, Scalars]
    histograms: dict[str, Histograms]
    plugin_tags: dict[str, set[str]]  # plugin name -> tags, for the other plugins

    @property
    def tags(self) -> set[str]:
        """Every scalar and histogram tag."""
        return set(self.scalars) | set(self.histograms)


@dataclasses.dataclass
class RunEvents:
    """The events of one run folder, as Keras's TensorBoard callback lays it out."""

    path: Path
    train: EventData
    validation: EventData


def event_files(folder: str | Path) -> list[Path]:
    """Returns the event files directly in `folder`, oldest first."""
    return sorted(Path(folder).glob(EVENT_FILE_GLOB))


def iter_records(path: str | Path):
    """Yields (offset, data) of each TFRecord in `path`; warns and stops at a partial record."""
    data = Path(path).read_bytes()
    offset, end = 0, len(data)
    while offset < end:
        if end - offset < _HEADER.size:
            _warn_corrupt(path, offset, "partial record header")
            return
        length, _ = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        stop = start + length
        if stop + _FOOTER_BYTES > end:
            _warn_corrupt(path, offset, "record runs past the end of the file")
            return
        yield offset, data[start:stop]
        offset = stop + _FOOTER_BYTES


def _warn_corrupt(path, offset, reason):
    warnings.warn(
        f"event file {path} is truncated or corrupt at byte {offset} ({reason}); "
        "read the events before it",
        CorruptEventFileWarning,
        stacklevel=3,
    )


def read_events(folder: str | Path) -> EventData:
    """Reads every event file directly in `folder` into one `EventData`."""
    scalar_rows: dict[str, list] = {}
    histogram_rows: dict[str, list] = {}
    plugin_tags: dict[str, set[str]] = {}
    for path in event_files(folder):
        plugin_of_tag: dict[str, str] = {}  # TF2 writes plugin metadata once per tag and file
        for offset, record in iter_records(path):
            try:
                event = event_pb2.Event.FromString(record)
            except DecodeError:
                _warn_corrupt(path, offset, "undecodable event")
                break
            if not event.HasField("summary"):
                continue
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name:
                    plugin_of_tag[value.tag] = value.metadata.plugin_data.plugin_name
                kind = value.WhichOneof("value")
                if kind == "simple_value":
                    scalar_rows.setdefault(value.tag, []).append(
                        (event.step, value.simple_value, event.wall_time))
                    continue
                if kind != "tensor":
                    continue
                plugin = plugin_of_tag.get(value.tag, "")
                if plugin == SCALARS_PLUGIN:
                    scalar_rows.setdefault(value.tag, []).append(
                        (event.step, float(_tensor_value(value.tensor).reshape(())), event.wall_time))
                elif plugin == HISTOGRAMS_PLUGIN:
                    histogram_rows.setdefault(value.tag, []).append(
                        (event.step, _tensor_value(value.tensor).reshape(-1, 3)))
                else:
                    plugin_tags.setdefault(plugin, set()).add(value.tag)
    return EventData(
        scalars={tag: _to_scalars(rows) for tag, rows in scalar_rows.items()},
        histograms={tag: _to_histograms(rows) for tag, rows in histogram_rows.items()},
        plugin_tags=plugin_tags,
    )


_FAST_DTYPES = {1: "<f4", 2: "<f8"}  # DT_FLOAT, DT_DOUBLE stored as raw bytes


def _tensor_value(tensor) -> np.ndarray:
    if tensor.tensor_content and tensor.dtype in _FAST_DTYPES:
        return np.frombuffer(tensor.tensor_content, _FAST_DTYPES[tensor.dtype]).astype(np.float64)
    return np.asarray(tensor_util.make_ndarray(tensor), dtype=np.float64)


def _to_scalars(rows) -> Scalars:
    order = sorted(range(len(rows)), key=lambda index: rows[index][0])
    steps, values, wall_times = zip(*(rows[index] for index in order))
    return Scalars(np.asarray(steps, np.int64), np.asarray(values, np.float64),
                   np.asarray(wall_times, np.float64))


def _to_histograms(rows) -> Histograms:
    order = sorted(range(len(rows)), key=lambda index: rows[index][0])
    return Histograms(
        np.asarray([rows[index][0] for index in order], np.int64),
        [rows[index][1] for index in order],
    )


def read_run(run_dir: str | Path) -> RunEvents:
    """Reads the `train/` and `validation/` events of a run folder."""
    run_dir = Path(run_dir)
    return RunEvents(
        path=run_dir,
        train=read_events(run_dir / runs.TRAIN_DIR),
        validation=read_events(run_dir / runs.VALIDATION_DIR),
    )
