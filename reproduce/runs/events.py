"""The one reader of TensorBoard event files: every event, nothing sampled.

Reads TF2 summaries (scalars and histograms stored as tensors) and TF1 ones
(`simple_value` scalars, `histo` histograms) straight from the TFRecord
framing, without TensorFlow and without TensorBoard's reservoir sampling.
It reads folders of event files and knows nothing of run folders
(`reproduce.runs.read_run_events` reads a run's `train/` and `validation/`).

A damaged file (a crash mid-write, bytes appended, a record that does not
decode) gives one `CorruptEventFileWarning` naming the file; every event that
can still be framed and decoded is kept. Record headers are checked against
their CRC, so appended garbage is never taken for a record; the data CRC is
not checked (in pure Python it would cost more than the decoding), so a
record whose data is damaged is skipped when it fails to decode.

Example:

```python
train = read_events("logs/article/moons/relu-d4-w32-s0/train")
batch_loss = train.scalars["batch_loss"]  # every optimizer step
last = summarize_histogram(train.histograms["gradients/dense_1/kernel"].buckets[-1])
```
"""

from __future__ import annotations

import dataclasses
import functools
import math
import struct
import warnings
from pathlib import Path

import numpy as np
from google.protobuf.message import DecodeError
from tensorboard import data_compat
from tensorboard.compat.proto import event_pb2, types_pb2
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
from tensorboard.util import tensor_util


SCALARS_PLUGIN = "scalars"
HISTOGRAMS_PLUGIN = "histograms"
EVENT_FILE_GLOB = "events.out.tfevents.*"
_LENGTH = struct.Struct("<Q")  # record length
_CRC = struct.Struct("<I")  # masked CRC-32C
_HEADER_BYTES = _LENGTH.size + _CRC.size
_FOOTER_BYTES = _CRC.size  # masked CRC of the data
# TF1 value kinds that TensorBoard itself converts to tensors before reading them.
_LEGACY_KINDS = ("histo", "image", "audio")


class CorruptEventFileWarning(UserWarning):
    """An event file ends in a partial record or holds an unreadable one."""


@dataclasses.dataclass
class Scalars:
    """One scalar tag: values in step order (stable for repeated steps)."""

    steps: np.ndarray  # int64
    values: np.ndarray  # float64

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
    """Everything read from the event files of one folder (one TensorBoard run).

    `scalars` and `histograms` keep their tags in the order first written, which
    for the loggers' per-layer tags is the model's layer order.
    """

    scalars: dict[str, Scalars]
    histograms: dict[str, Histograms]
    plugin_tags: dict[str, set[str]]  # plugin name -> tags, for the other plugins
    event_count: int = 0  # event records decoded, summaries or not

    @property
    def tags(self) -> set[str]:
        """Every scalar and histogram tag."""
        return set(self.scalars) | set(self.histograms)


@dataclasses.dataclass(frozen=True)
class HistogramStats:
    """Moments of a bucketed histogram, each bucket's count placed at its centre."""

    count: float
    mean: float
    std: float  # population standard deviation
    mean_abs: float  # mean of |x|


def event_files(folder: str | Path) -> list[Path]:
    """Returns the event files directly in `folder`, oldest first."""
    return sorted(Path(folder).glob(EVENT_FILE_GLOB))


def iter_records(path: str | Path):
    """Yields (offset, data) of each TFRecord in `path`.

    Reading stops where the framing breaks (a partial record or a header whose
    CRC does not match), with one `CorruptEventFileWarning` naming the file.
    """
    problems: list[str] = []
    yield from _frame_records(Path(path).read_bytes(), problems)
    if problems:
        _warn_corrupt(path, problems)


def _frame_records(data: bytes, problems: list[str]):
    """Yields (offset, data) of each framed record; appends to `problems` why it stopped."""
    offset, end = 0, len(data)
    while offset < end:
        if end - offset < _HEADER_BYTES:
            problems.append(f"partial record header at byte {offset}")
            return
        (length,) = _LENGTH.unpack_from(data, offset)
        (length_crc,) = _CRC.unpack_from(data, offset + _LENGTH.size)
        # Past a bad header no later record can be located, so reading stops.
        if _length_crc(data[offset:offset + _LENGTH.size]) != length_crc:
            problems.append(f"bad record header at byte {offset}")
            return
        start = offset + _HEADER_BYTES
        stop = start + length
        if stop + _FOOTER_BYTES > end:
            problems.append(f"record at byte {offset} runs past the end of the file")
            return
        yield offset, data[start:stop]
        offset = stop + _FOOTER_BYTES


@functools.lru_cache(maxsize=4096)
def _length_crc(length_bytes: bytes) -> int:
    # Pure-Python CRC, cached: most records of a file share a handful of lengths.
    return masked_crc32c(length_bytes)


def _warn_corrupt(path, problems: list[str]) -> None:
    more = f" and {len(problems) - 1} more problem(s)" if len(problems) > 1 else ""
    warnings.warn(
        f"event file {path} is truncated or corrupt: {problems[0]}{more}; "
        "read every event that could be read",
        CorruptEventFileWarning,
        stacklevel=3,
    )


def read_events(folder: str | Path) -> EventData:
    """Reads every event file directly in `folder` into one `EventData`.

    A missing folder or one without event files gives an empty `EventData`.
    Damaged or unreadable files give one `CorruptEventFileWarning` each.
    """
    collector = _Collector()
    for path in event_files(folder):
        problems: list[str] = []
        try:
            data = path.read_bytes()
        except OSError as error:
            data = b""
            problems.append(f"cannot be read ({error.strerror or error})")
        for offset, record in _frame_records(data, problems):
            try:
                event = event_pb2.Event.FromString(record)
            except DecodeError:
                problems.append(f"undecodable event at byte {offset}")
                continue
            problems.extend(f"{problem} in the event at byte {offset}"
                            for problem in collector.add(event))
        if problems:
            _warn_corrupt(path, problems)
    return collector.to_event_data()


class _Collector:
    """Sorts the values of a folder's events into scalar, histogram and other-plugin tags."""

    def __init__(self):
        self.scalar_rows: dict[str, list] = {}
        self.histogram_rows: dict[str, list] = {}
        self.plugin_tags: dict[str, set[str]] = {}
        # TF2 writers attach a tag's plugin metadata to its first value in each
        # file only; remembered across the folder's files, since a tag's plugin
        # never changes.
        self.plugin_of_tag: dict[str, str] = {}
        self.event_count = 0

    def add(self, event) -> list[str]:
        """Adds the summary values of `event`; returns a problem per unreadable value."""
        self.event_count += 1
        problems = []
        if event.HasField("summary"):
            for value in event.summary.value:
                try:
                    self._add_value(event.step, value)
                except (ValueError, TypeError, KeyError) as error:  # KeyError: no numpy dtype
                    problems.append(f"unreadable value of tag {value.tag!r} ({error})")
        return problems

    def _add_value(self, step, value) -> None:
        kind = value.WhichOneof("value")
        if kind == "simple_value":
            self.scalar_rows.setdefault(value.tag, []).append((step, value.simple_value))
            return
        if kind in _LEGACY_KINDS:
            value = data_compat.migrate_value(value)
            kind = "tensor"
        if kind != "tensor":
            return
        plugin = value.metadata.plugin_data.plugin_name
        if plugin:
            self.plugin_of_tag[value.tag] = plugin
        else:
            plugin = self.plugin_of_tag.get(value.tag, "")
        # Each value is read before its tag is added: an unreadable one leaves no empty series.
        if plugin == SCALARS_PLUGIN:
            scalar = _scalar_value(value.tensor)
            self.scalar_rows.setdefault(value.tag, []).append((step, scalar))
        elif plugin == HISTOGRAMS_PLUGIN:
            buckets = _tensor_value(value.tensor).reshape(-1, 3)
            self.histogram_rows.setdefault(value.tag, []).append((step, buckets))
        else:
            self.plugin_tags.setdefault(plugin, set()).add(value.tag)

    def to_event_data(self) -> EventData:
        return EventData(
            scalars={tag: _to_scalars(rows) for tag, rows in self.scalar_rows.items()},
            histograms={tag: _to_histograms(rows) for tag, rows in self.histogram_rows.items()},
            plugin_tags=self.plugin_tags,
            event_count=self.event_count,
        )


_FAST_DTYPES = {types_pb2.DT_FLOAT: "<f4", types_pb2.DT_DOUBLE: "<f8"}


def _scalar_value(tensor) -> float:
    # Most scalars are one float in `float_val`; skipping make_ndarray for them
    # halves the time to read a run.
    if tensor.dtype == types_pb2.DT_FLOAT and len(tensor.float_val) == 1:
        return float(tensor.float_val[0])
    values = _tensor_value(tensor)
    if values.size != 1:
        raise ValueError(f"a scalar holds {values.size} values")
    return float(values.reshape(()))


def _tensor_value(tensor) -> np.ndarray:
    if tensor.tensor_content and tensor.dtype in _FAST_DTYPES:
        return np.frombuffer(tensor.tensor_content, _FAST_DTYPES[tensor.dtype]).astype(np.float64)
    return np.asarray(tensor_util.make_ndarray(tensor), dtype=np.float64)


def _step_order(rows) -> np.ndarray:
    return np.argsort(np.fromiter((row[0] for row in rows), np.int64, len(rows)), kind="stable")


def _to_scalars(rows) -> Scalars:
    rows = [rows[index] for index in _step_order(rows)]
    steps, values = zip(*rows)
    return Scalars(np.asarray(steps, np.int64), np.asarray(values, np.float64))


def _to_histograms(rows) -> Histograms:
    rows = [rows[index] for index in _step_order(rows)]
    return Histograms(np.asarray([row[0] for row in rows], np.int64), [row[1] for row in rows])


def summarize_histogram(buckets) -> HistogramStats:
    """Returns the count, mean, std and mean |x| of TensorBoard histogram buckets.

    Each bucket's count sits at its centre; buckets of constant data have
    left == right, so their centre is the value itself. An empty histogram
    has count 0 and NaN moments.

    Args:
        buckets: array-like of shape (k, 3), rows `[left, right, count]`.

    Example:

    >>> summarize_histogram([[0, 2, 1], [2, 4, 3]]).mean
    2.5
    """
    buckets = np.asarray(buckets, np.float64).reshape(-1, 3)
    centres = (buckets[:, 0] + buckets[:, 1]) / 2
    counts = buckets[:, 2]
    total = float(counts.sum())
    if total <= 0:
        return HistogramStats(0.0, math.nan, math.nan, math.nan)
    mean = float(counts @ centres) / total
    variance = float(counts @ (centres - mean) ** 2) / total
    mean_abs = float(counts @ np.abs(centres)) / total
    return HistogramStats(total, mean, math.sqrt(variance), mean_abs)


def mass_at(buckets, value: float) -> float:
    """Share of a histogram's count that is exactly `value`.

    Only a constant histogram (buckets with left == right) says a value is
    exact; a bucket of width > 0 that touches `value` does not count.
    """
    buckets = np.asarray(buckets, np.float64).reshape(-1, 3)
    total = buckets[:, 2].sum()
    if total <= 0:
        return 0.0
    exact = (buckets[:, 0] == value) & (buckets[:, 1] == value)
    return float(buckets[exact, 2].sum() / total)


def mass_in_top_bucket(buckets, value: float) -> float:
    """Share of a histogram's count in buckets whose right edge is `value`.

    For ReLU, whose derivative is 0 or 1, this is exactly the share at 1; in
    general it bounds it from above.
    """
    buckets = np.asarray(buckets, np.float64).reshape(-1, 3)
    total = buckets[:, 2].sum()
    return float(buckets[buckets[:, 1] == value, 2].sum() / total) if total > 0 else 0.0


def histogram_range(buckets) -> tuple[float, float]:
    """Returns (lowest left edge, highest right edge) over the buckets that hold data."""
    buckets = np.asarray(buckets, np.float64).reshape(-1, 3)
    filled = buckets[buckets[:, 2] > 0]
    if not len(filled):
        return math.nan, math.nan
    return float(filled[:, 0].min()), float(filled[:, 1].max())
