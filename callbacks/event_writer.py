"""`EventWriter`: writes summary events computed on the device with one host round trip.

Writing through `tf.summary` costs one graph op per tag, and graph ops cost
about a millisecond each to trace here, so a log of a few dozen histograms
took seconds to trace and milliseconds to run. The loggers instead compute
every value in one compiled call and hand the results here, which frames
them as TensorBoard events (TFRecord framing via `tf.io.TFRecordWriter`).
`write_summary` and `write_event_file` take ready-made summaries (images,
hparams, layouts), so every event file of a run folder is written here.
"""

from __future__ import annotations

import os
import socket
import time
import uuid

import numpy as np
import tensorflow as tf
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorboard.plugins.histogram import metadata as histogram_metadata
from tensorboard.plugins.scalar import metadata as scalar_metadata

_SCALAR_METADATA = scalar_metadata.create_summary_metadata(display_name="", description="")
_HISTOGRAM_METADATA = histogram_metadata.create_summary_metadata(display_name="", description="")


class EventWriter:
    """An event file in `folder`, created on the first write.

    Plugin metadata is attached to the first value of each tag in the file,
    as `tf.summary` writers do.
    """

    def __init__(self, folder):
        self.folder = os.fspath(folder)
        self._writer = None
        self._tags_seen = set()

    def _open(self):
        os.makedirs(self.folder, exist_ok=True)
        # The random part keeps the name apart from tf.summary's files of the same second.
        name = "events.out.tfevents.%010d.%s.%d.%s.v2" % (
            time.time(), socket.gethostname(), os.getpid(), uuid.uuid4().hex[:12])
        self._writer = tf.io.TFRecordWriter(os.path.join(self.folder, name))
        self._writer.write(event_pb2.Event(
            wall_time=time.time(), file_version="brain.Event:2").SerializeToString())

    def write(self, step: int, scalars=(), histograms=()) -> None:
        """Writes one event at `step` holding every (tag, value) given.

        Args:
            step: the event's step.
            scalars: (tag, float) pairs.
            histograms: (tag, array of shape (k, 3)) pairs, TensorBoard's
                `[left, right, count]` buckets.
        """
        values = [self._value(tag, _scalar_tensor(value), _SCALAR_METADATA)
                  for tag, value in scalars]
        values += [self._value(tag, _histogram_tensor(buckets), _HISTOGRAM_METADATA)
                   for tag, buckets in histograms]
        if values:
            self.write_summary(step, summary_pb2.Summary(value=values))

    def write_summary(self, step: int, summary: summary_pb2.Summary) -> None:
        """Writes a ready-made `Summary` (an image, hparams, a layout) as one event at `step`.

        Its values carry their own plugin metadata.
        """
        if self._writer is None:
            self._open()
        event = event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary)
        self._writer.write(event.SerializeToString())

    def write_scalar_series(self, tag: str, steps, values) -> None:
        """Writes one scalar event per (step, value)."""
        for step, value in zip(steps, values):
            self.write(step, scalars=[(tag, value)])

    def _value(self, tag, tensor, metadata):
        value = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
        if tag not in self._tags_seen:
            value.metadata.CopyFrom(metadata)
            self._tags_seen.add(tag)
        return value

    def close(self) -> None:
        """Closes the file; a later write starts a new one."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._tags_seen = set()


def write_event_file(path, summaries) -> None:
    """Writes (step, `Summary`) pairs as one whole event file at `path`, replacing it at once.

    The file is written aside under a name without "tfevents", which no
    TensorBoard reader takes, then renamed: readers see the old file or the new one.
    """
    path = os.fspath(path)
    folder, name = os.path.split(path)
    partial = os.path.join(folder, "." + name.replace("tfevents", "partial"))
    writer = tf.io.TFRecordWriter(partial)
    writer.write(event_pb2.Event(
        wall_time=time.time(), file_version="brain.Event:2").SerializeToString())
    for step, summary in summaries:
        writer.write(event_pb2.Event(
            wall_time=time.time(), step=int(step), summary=summary).SerializeToString())
    writer.close()
    os.replace(partial, path)


def _scalar_tensor(value) -> tensor_pb2.TensorProto:
    return tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, tensor_shape=tensor_shape_pb2.TensorShapeProto(),
        float_val=[float(value)])


def _histogram_tensor(buckets) -> tensor_pb2.TensorProto:
    buckets = np.asarray(buckets, dtype="<f8")
    shape = tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in buckets.shape])
    return tensor_pb2.TensorProto(
        dtype=types_pb2.DT_DOUBLE, tensor_shape=shape, tensor_content=buckets.tobytes())
