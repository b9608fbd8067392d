"""Summary values for many tensors at once, in a few graph ops.

Each graph op costs about a millisecond to trace here and tens of
microseconds to run, so a logger's tensors are flattened once into one vector
with a segment id per tensor, and every per-tensor statistic (histogram
buckets, norms, extremes) is a segment reduction over that vector.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf


@dataclasses.dataclass
class Flat:
    """Tensors flattened into one float32 vector; `segments` says which tensor each entry is."""

    values: tf.Tensor
    segments: tf.Tensor  # int32, same length as `values`
    count: int  # number of tensors

    @classmethod
    def of(cls, tensors) -> "Flat":
        """Flattens `tensors` in order (sizes known when traced, or computed when not)."""
        parts = [tf.reshape(tensor if tensor.dtype == tf.float32 else tf.cast(tensor, tf.float32),
                            [-1]) for tensor in tensors]
        if all(tensor.shape.is_fully_defined() for tensor in tensors):
            sizes = [int(np.prod(tensor.shape)) for tensor in tensors]
            segments = tf.constant(np.repeat(np.arange(len(tensors)), sizes), tf.int32)
        else:
            segments = tf.repeat(tf.range(len(tensors)), [tf.size(part) for part in parts])
        return cls(tf.concat(parts, 0) if len(parts) > 1 else parts[0], segments, len(tensors))

    def with_values(self, values) -> "Flat":
        """The same layout holding other values (e.g. a difference of two flats)."""
        return Flat(values, self.segments, self.count)

    def segment_max(self, values=None):
        # The segments are sorted, and sorted segment ops are several times faster.
        return tf.math.segment_max(self.values if values is None else values, self.segments)

    def norms(self):
        """The L2 norm of each tensor, shape (count,)."""
        return tf.sqrt(tf.math.segment_sum(tf.square(self.values), self.segments))

    def histograms(self, bucket_count: int):
        """TensorBoard's histogram of each tensor: float64, shape (count, bucket_count, 3).

        As `tf.summary.histogram`: buckets split [min, max] evenly, the last
        one closed; a constant tensor gives buckets with left = right = its
        value and the whole count in the last one.
        """
        low = tf.math.segment_min(self.values, self.segments)
        high = self.segment_max()
        spread = high - low
        varied = spread > 0
        # index = floor(x * slope + intercept) per tensor; a constant tensor gets slope 0
        # and the last bucket. One gather of both: gathers cost ~10 ns per entry here.
        slope = tf.where(varied, bucket_count / tf.where(varied, spread, 1.0), 0.0)
        intercept = tf.where(varied, -low * slope, bucket_count - 1.0)
        entry_slope, entry_intercept = tf.unstack(
            tf.gather(tf.stack([slope, intercept], axis=1), self.segments), axis=1)
        index = tf.cast(tf.floor(self.values * entry_slope + entry_intercept), tf.int32)
        # Rounding can push the extremes one bucket out: clamp them back.
        keys = self.segments * bucket_count + tf.clip_by_value(index, 0, bucket_count - 1)
        counts = tf.math.unsorted_segment_sum(tf.ones_like(self.values), keys,
                                              self.count * bucket_count)
        low, high, spread = (tf.cast(value, tf.float64) for value in (low, high, spread))
        offsets = tf.constant(np.arange(bucket_count + 1)[None, :], tf.float64)
        edges = tf.where(varied[:, None], low[:, None] + offsets * (spread / bucket_count)[:, None],
                         high[:, None])
        edges = tf.concat([edges[:, :-1], high[:, None]], axis=1)
        counts = tf.cast(tf.reshape(counts, [self.count, bucket_count]), tf.float64)
        return tf.stack([edges[:, :-1], edges[:, 1:], counts], axis=2)
