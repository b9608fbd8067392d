"""Summary values for many tensors at once, in few graph ops and few passes over the data.

Graph ops cost about a millisecond each to trace here and tens of
microseconds to run, while a convnet's activations on a probe hold millions
of entries. Norms of many tensors, and histograms of small ones, are
therefore segment reductions over the tensors flattened into one vector
(`Flat`), a fixed number of ops however many tensors; a large tensor's
histogram takes three passes with TensorFlow's fixed-width histogram kernel.
No graph constant grows with the tensors' sizes: large constants make graphs
slow to build and optimise.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf


@dataclasses.dataclass
class Flat:
    """Tensors flattened into one float32 vector; `segments` says which tensor each entry is."""

    values: tf.Tensor
    segments: tf.Tensor  # int32, same length as `values`, sorted
    count: int  # number of tensors

    @classmethod
    def of(cls, tensors) -> "Flat":
        """Flattens `tensors` in order (sizes known when traced, or computed when not)."""
        parts = [_flat_float32(tensor) for tensor in tensors]
        values = tf.concat(parts, 0) if len(parts) > 1 else parts[0]
        return cls(values, _segment_ids(parts), len(parts))

    def with_values(self, values) -> "Flat":
        """The same layout holding other values (e.g. a difference of two flats)."""
        return Flat(values, self.segments, self.count)

    def norms(self):
        """The L2 norm of each tensor, shape (count,)."""
        return tf.sqrt(tf.math.segment_sum(tf.square(self.values), self.segments))


SMALL = 1 << 16  # entries up to which a tensor's histogram is computed with the others
SAMPLE_SIZE = 1 << 16  # entries counted, at most, in the histogram of a larger tensor
# Small tensors of one size holding this many entries in all are bucketed as rows of a matrix.
ROWS_MIN_ENTRIES = 1 << 12


def histograms(tensors, bucket_count: int):
    """TensorBoard's histogram of each tensor: float64, shape (len(tensors), bucket_count, 3).

    As `tf.summary.histogram`: buckets split [min, max] evenly, the last one
    closed; a constant tensor gives buckets with left = right = its value
    and the whole count in the last one. A tensor with a NaN or infinite
    entry gets NaN edges (its counts still add up to its size).

    A tensor of more than `SAMPLE_SIZE` entries (of known size) keeps its
    exact [min, max], NaN and infinity included, but its counts are those of
    a lattice sample of at most `SAMPLE_SIZE` entries (every p-th entry,
    p a prime dividing none of its dimensions, so every channel and
    position is visited alike), scaled by size / sample size: they add up
    to its size and estimate each bucket's count to about 1/sqrt(count in
    the sample). Counting every entry of a convnet's activations cost
    ~4 ns per entry here, a pass over its own (TensorFlow's histogram kernel
    is single-threaded), against ~0.7 ns for the exact range.

    Small tensors are flattened together and bucketed in a fixed number of
    ops (cheap to trace); each large one gets TensorFlow's fixed-width
    histogram kernel (where a gather per entry would cost ~20 ns).
    """
    tensors = [tf.convert_to_tensor(tensor) for tensor in tensors]
    parts = [_flat_float32(tensor) for tensor in tensors]
    small = [index for index, part in enumerate(parts)
             if part.shape.num_elements() is not None and part.shape.num_elements() <= SMALL]
    large = [index for index in range(len(parts)) if index not in small]
    by_size: dict[int, list[int]] = {}
    for index in small:
        by_size.setdefault(parts[index].shape.num_elements(), []).append(index)
    row_groups = [indices for size, indices in by_size.items()
                  if len(indices) > 1 and size * len(indices) >= ROWS_MIN_ENTRIES]
    in_rows = {index for indices in row_groups for index in indices}
    small = [index for index in small if index not in in_rows]
    results = [(indices, _histograms_of_rows([parts[index] for index in indices], bucket_count))
               for indices in row_groups]
    if small:
        together = _histograms_together([parts[index] for index in small], bucket_count)
        results.append((small, together))
    if large:
        strides = [sample_stride(tensors[index].shape) for index in large]
        apart = _histograms_apart([parts[index] for index in large], strides, bucket_count)
        results.append((large, apart))
    if len(results) == 1:
        return results[0][1]
    rows = {}
    for indices, result in results:
        rows.update(zip(indices, tf.unstack(result, num=len(indices))))
    return tf.stack([rows[index] for index in range(len(parts))])


def histogram_on_host(values, bucket_count: int, size=None, value_range=None) -> np.ndarray:
    """`histograms`' buckets of one array, with numpy: shape (bucket_count, 3), float64.

    The float32 arithmetic of `histograms`' path for small tensors, so the
    same counts for finite values. For the histogram of a large tensor from
    its lattice sample (`sample_stride`), `values` is the sample, `size` the
    tensor's number of entries (the counts are scaled to it) and
    `value_range` its exact (min, max, all entries finite).
    """
    values = np.asarray(values, np.float32).reshape(-1)
    if value_range is None:
        finite = bool(np.isfinite(values).all())
        low, high = (values.min(), values.max()) if finite and values.size else (0.0, 0.0)
    else:
        low, high, finite = value_range
    low, high = np.float32(low), np.float32(high)
    with np.errstate(invalid="ignore", over="ignore"):
        if finite and high > low:
            slope = np.float32(bucket_count) / (high - low)
            scaled = values * slope + (-low * slope)
        else:  # a constant or non-finite tensor: the last bucket
            scaled = values * np.float32(0.0) + np.float32(bucket_count - 1)
        # NaN lands in the first bucket, as TensorFlow's cast of it to an index clamped back.
        index = np.clip(np.nan_to_num(np.floor(scaled), nan=0.0, posinf=0.0, neginf=0.0),
                        0, bucket_count - 1).astype(np.int64)
    counts = np.bincount(index, minlength=bucket_count).astype(np.float64)
    if size is not None:
        counts *= size / len(values)
    low, high = (float(low), float(high)) if finite else (np.nan, np.nan)
    if high - low > 0:
        edges = low + np.arange(bucket_count + 1) * ((high - low) / bucket_count)
        edges[-1] = high
    else:
        edges = np.full(bucket_count + 1, high)
    return np.stack([edges[:-1], edges[1:], counts], axis=1)


def _histograms_together(parts, bucket_count):
    flat = Flat(tf.concat(parts, 0) if len(parts) > 1 else parts[0], _segment_ids(parts),
                len(parts))
    low = tf.math.segment_min(flat.values, flat.segments)
    high = tf.math.segment_max(flat.values, flat.segments)  # both skip NaN
    finite = tf.math.segment_min(tf.cast(tf.math.is_finite(flat.values), tf.int32),
                                 flat.segments) > 0
    slope, intercept = _bucket_scale(low, high, finite, bucket_count)
    # One gather of both for every entry.
    entry_slope, entry_intercept = tf.unstack(
        tf.gather(tf.stack([slope, intercept], axis=1), flat.segments), axis=1)
    counts = _bucket_counts(flat.values * entry_slope + entry_intercept, flat.segments,
                            flat.count, bucket_count)
    return _with_edges(counts, low, high, finite)


def _histograms_of_rows(parts, bucket_count):
    """Like `_histograms_together`, for tensors of one size: rows of a matrix, no gather.

    Reductions along rows and a broadcast run several times faster than
    segment reductions and a gather per entry (~1.5 against ~4.5 ms for
    sixteen 256x32 activations here), with the same float32 arithmetic, so
    the same counts.
    """
    rows = tf.stack(parts)
    low = tf.reduce_min(rows, axis=1)  # NaN when the row holds one: such a row is not finite
    high = tf.reduce_max(rows, axis=1)
    finite = tf.reduce_all(tf.math.is_finite(rows), axis=1)
    slope, intercept = _bucket_scale(low, high, finite, bucket_count)
    row = tf.range(len(parts))[:, None]
    return _with_edges(_bucket_counts(rows * slope[:, None] + intercept[:, None], row,
                                      len(parts), bucket_count), low, high, finite)


def _bucket_scale(low, high, finite, bucket_count):
    """Per tensor, (slope, intercept) such that an entry's bucket is floor(x * slope + intercept).

    A constant or non-finite tensor gets slope 0 and the last bucket.
    """
    varied = finite & (high > low)
    slope = tf.where(varied, bucket_count / tf.where(varied, high - low, 1.0), 0.0)
    return slope, tf.where(varied, -low * slope, bucket_count - 1.0)


def _bucket_counts(scaled, tensor_index, count: int, bucket_count: int):
    """(count, bucket_count) float64 counts of floor(`scaled`), entry by entry of its tensor."""
    index = tf.cast(tf.floor(scaled), tf.int32)
    # Rounding can push the extremes one bucket out, and NaN gives any index: clamp them back.
    keys = tensor_index * bucket_count + tf.clip_by_value(index, 0, bucket_count - 1)
    # The kernel of tf.math.bincount, without its checks and its pass for the largest key.
    counts = tf.raw_ops.DenseBincount(input=tf.reshape(keys, [-1]), size=count * bucket_count,
                                      weights=tf.zeros([0], tf.float64), binary_output=False)
    return tf.reshape(counts, [count, bucket_count])


def _histograms_apart(parts, strides, bucket_count):
    # reduce_min/max propagate NaN, so a finite range means finite entries.
    low = tf.stack([tf.reduce_min(part) for part in parts])
    high = tf.stack([tf.reduce_max(part) for part in parts])
    finite = tf.math.is_finite(low) & tf.math.is_finite(high)
    varied = finite & (high > low)
    # The kernel wants an increasing range and no NaN: a constant tensor's range ends at its
    # value and a non-finite tensor is counted as zeros in [-1, 0], both in the last bucket.
    start = tf.where(varied, low, tf.where(finite, low - tf.abs(low) - 1.0, -1.0))
    end = tf.where(finite, high, 0.0)
    ranges = tf.unstack(tf.stack([start, end], axis=1), num=len(parts))
    counts = []
    for part, stride, part_finite, value_range in zip(
            parts, strides, tf.unstack(finite, num=len(parts)), ranges):
        sample = part if stride == 1 else part[::stride]
        count = tf.cast(tf.histogram_fixed_width(tf.where(part_finite, sample, 0.0),
                                                 value_range, nbins=bucket_count), tf.float64)
        if stride > 1:
            size = part.shape.num_elements()
            count = count * size / (-(-size // stride))  # scaled to the whole tensor
        counts.append(count)
    return _with_edges(tf.stack(counts), low, high, finite)


def _with_edges(counts, low, high, finite):
    """[left, right, count] buckets from each tensor's counts and range."""
    bucket_count = counts.shape[1]
    low, high = (tf.cast(tf.where(finite, value, np.nan), tf.float64) for value in (low, high))
    spread = high - low
    offsets = tf.constant(np.arange(bucket_count + 1)[None, :], tf.float64)
    edges = tf.where((spread > 0)[:, None],
                     low[:, None] + offsets * (spread / bucket_count)[:, None], high[:, None])
    edges = tf.concat([edges[:, :-1], high[:, None]], axis=1)
    return tf.stack([edges[:, :-1], edges[:, 1:], counts], axis=2)


def sample_stride(shape) -> int:
    """1, or the smallest prime p with size / p <= `SAMPLE_SIZE` that divides no dimension."""
    size = shape.num_elements()
    if size is None or size <= SAMPLE_SIZE:
        return 1
    candidate = -(-size // SAMPLE_SIZE)
    while not (_is_prime(candidate) and all(dimension % candidate for dimension in shape)):
        candidate += 1
    return candidate


def _is_prime(number: int) -> bool:
    return number > 1 and all(number % divisor for divisor in range(2, int(number ** 0.5) + 1))


def _flat_float32(tensor):
    tensor = tf.convert_to_tensor(tensor)
    return tf.reshape(tensor if tensor.dtype == tf.float32 else tf.cast(tensor, tf.float32), [-1])


def _segment_ids(parts):
    """0 for the entries of the first part, 1 for the second's, ...; built in the graph.

    A constant of one id per entry would be as large as the data; the ids
    are the running sum of a vector marking where each part starts.
    """
    sizes = [part.shape.num_elements() for part in parts]
    if None in sizes:
        return tf.repeat(tf.range(len(parts)), [tf.size(part) for part in parts])
    total = sum(sizes)
    starts = np.cumsum(sizes)[:-1]
    starts = starts[starts < total]  # trailing empty parts start past the end
    if not len(starts):
        return tf.zeros([total], tf.int32)
    marks = tf.scatter_nd(starts[:, None], tf.ones([len(starts)], tf.int32), [total])
    return tf.cumsum(marks)
