"""Summary values for many tensors at once, in a few graph ops.

Graph ops cost about a millisecond each to trace, so the histograms of all of
a logger's tensors are computed together: the tensors are flattened into one
vector with a segment id per tensor, and every per-tensor statistic is a
segment reduction.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def _flatten(tensors):
    flat = tf.concat([tf.reshape(tf.cast(tensor, tf.float32), [-1]) for tensor in tensors], 0)
    sizes = [int(np.prod(tensor.shape)) for tensor in tensors]
    segments = tf.constant(np.repeat(np.arange(len(tensors)), sizes), tf.int32)
    return flat, segments


def histograms(tensors, bucket_count: int):
    """Returns TensorBoard's histograms of `tensors`: float64, shape (len(tensors), k, 3).

    As `tf.summary.histogram`: buckets split [min, max] evenly, the last one
    closed; a constant tensor gives k buckets with left = right = its value
    and the whole count in the last one. Tensors must have static shapes.
    """
    flat, segments = _flatten(tensors)
    flat = tf.cast(flat, tf.float64)
    count = len(tensors)
    low = tf.math.unsorted_segment_min(flat, segments, count)
    high = tf.math.unsorted_segment_max(flat, segments, count)
    spread = high - low
    varied = spread > 0
    width = tf.where(varied, spread / bucket_count, 1.0)
    index = tf.cast(tf.floor((flat - tf.gather(low, segments)) / tf.gather(width, segments)),
                    tf.int32)
    index = tf.where(tf.gather(varied, segments), tf.minimum(index, bucket_count - 1),
                     bucket_count - 1)
    counts = tf.math.unsorted_segment_sum(
        tf.ones_like(flat), segments * bucket_count + index, count * bucket_count)
    counts = tf.reshape(counts, [count, bucket_count])
    offsets = tf.constant(np.arange(bucket_count + 1)[None, :], tf.float64)
    edges = tf.where(varied[:, None], low[:, None] + offsets * (spread / bucket_count)[:, None],
                     high[:, None])
    edges = tf.concat([edges[:, :-1], high[:, None]], axis=1)
    return tf.stack([edges[:, :-1], edges[:, 1:], counts], axis=2)


def norms(tensors):
    """Returns the L2 norm of each tensor, float32, shape (len(tensors),)."""
    flat, segments = _flatten(tensors)
    return tf.sqrt(tf.math.unsorted_segment_sum(tf.square(flat), segments, len(tensors)))
