"""The gradients an optimizer applies, kept from inside the compiled train step.

`OptimizerCapture.install()` adds a listener to one optimizer's
`StepRecorder` for the duration of a `fit`; it is traced into whatever train
step calls the optimizer's `apply` (or `apply_gradients`), Keras's own or a
custom one. At each call whose step (the optimizer's `iterations` before
the update) is a multiple of `every`, the wrapper copies the gradients into
a free slot of a small ring held in a variable; other calls cost one
comparison. A tensor of more than `summaries.SAMPLE_SIZE` entries is kept
as its lattice sample, exact range and norm, so a slot holds at most
~256 KB per variable. The host reads the ring at batch begins and epoch
ends (`drain`) and computes the histograms and norms there with numpy
(`summaries.histogram_on_host`): the train step gains a copy and no
summary ops, which cost ~0.15 s of tracing for keras-io's convnet, and the
host ~0.3 ms per log.

The gradients kept are the ones the optimizer receives to apply: divided
by the inner optimizer's `loss_scale_factor` if it has one; under a
`LossScaleOptimizer` around the recorder, unscaled, on the steps that are
applied (a step with non-finite gradients is skipped, and not
kept); under a distribution strategy with several replicas, summed over the
replicas (what the optimizer's update uses). Clipping and weight decay,
which the optimizer applies afterwards, are not in them.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import tensorflow as tf

from callbacks import step_recorder, summaries

SAMPLED_EXTRAS = 4  # after a large tensor's sample: its min, max, all-finite flag and norm


@dataclasses.dataclass(frozen=True)
class Region:
    """Where one variable's gradient lies in a slot: all of it, or its sample and extras."""

    offset: int
    size: int  # entries of the gradient
    stride: int  # 1: kept whole; p > 1: every p-th entry, then SAMPLED_EXTRAS values

    @property
    def length(self) -> int:
        return self.size if self.stride == 1 else -(-self.size // self.stride) + SAMPLED_EXTRAS


@dataclasses.dataclass
class Record:
    """One kept call: its step, the variables it applied gradients to, and their summaries."""

    step: int
    indices: list[int]  # of the capture's variables, in the order of the rows below
    norms: np.ndarray  # one per variable in `indices`, then the call's global norm
    histograms: np.ndarray  # (len(indices), buckets, 3)


class OptimizerCapture:
    """Keeps, every `every` steps of `optimizer`, the gradients it applies to `variables`.

    Args:
        optimizer: a `StepRecorder`, or a `LossScaleOptimizer` around one.
        variables: the variables whose gradients are kept, in tag order;
            gradients of other variables are applied but not kept.
        every: keep calls at steps 0, every, 2 * every, ...
        slots: calls kept between two drains; a due call finding no free
            slot is counted as lost.
        buckets: buckets per histogram.
        strategy: the model's distribution strategy; the ring lives in its scope.

    Raises:
        ValueError: the optimizer is not a `StepRecorder` (or a loss scaling
            around one), or accumulates gradients.
    """

    def __init__(self, optimizer, variables, every: int, slots: int, buckets: int, strategy):
        self.recorder = step_recorder.require_recorder(optimizer, "AppliedGradientLogger")
        self.optimizer = self.recorder.updating_optimizer
        if self.optimizer.gradient_accumulation_steps:
            raise ValueError(
                f"cannot log the applied gradients of optimizer {self.optimizer.name}: it "
                f"accumulates gradients over gradient_accumulation_steps="
                f"{self.optimizer.gradient_accumulation_steps} and applies their mean "
                "internally; log probe gradients with GradientLogger instead")
        self.variables = list(variables)
        self.every, self.slots, self.buckets = int(every), int(slots), int(buckets)
        self._index = {id(variable): index for index, variable in enumerate(self.variables)}
        self.regions, offset = [], 0
        for variable in self.variables:
            shape = tf.TensorShape(variable.shape)
            region = Region(offset, shape.num_elements(), summaries.sample_stride(shape))
            self.regions.append(region)
            offset += region.length
        self.sites = []  # the variable indices of each call in the traced steps
        self._warned = set()
        with strategy.scope():
            # Written in a replica context with one replica, in a cross-replica one otherwise.
            options = dict(trainable=False, synchronization=tf.VariableSynchronization.ON_WRITE,
                           aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
            self._ring = tf.Variable(tf.zeros([self.slots, max(1, offset)]), **options)
            # Per slot: the step and the site (which call of the traced steps) kept there.
            self._slot_meta = tf.Variable(tf.zeros([self.slots, 2], tf.int64), **options)
            # Calls kept, calls read by the host, due calls lost for want of a free slot.
            self._counters = tf.Variable(tf.zeros([3], tf.int64), **options)
        self._lost_reported = 0

    @property
    def recorded(self) -> set[int]:
        """Indices of the variables the traced steps apply gradients to."""
        return {index for site in self.sites for index in site}

    def install(self) -> None:
        """Adds the keeping to the steps traced from now on, until `remove`."""
        self.recorder.add_listener(self)

    def remove(self) -> None:
        self.recorder.remove_listener(self)

    def record_gradients(self, grads, variables, applied) -> None:
        """`StepRecorder` listener: traced at each `apply`, before the update."""
        if variables is not None:
            self._keep(grads, variables, applied)
        elif "no variables" not in self._warned:
            self._warned.add("no variables")
            warnings.warn(f"optimizer {self.optimizer.name}.apply was called without its "
                          "variables; its gradients are not logged", stacklevel=3)

    def _keep(self, grads, variables, applied) -> None:
        """Adds the keeping to the traced step: a copy into a free slot when the step is due."""
        pairs = [(gradient, self._index.get(id(variable)), variable)
                 for gradient, variable in zip(grads, variables) if gradient is not None]
        unknown = [variable.path for _, index, variable in pairs if index is None]
        if unknown and "unknown" not in self._warned:
            self._warned.add("unknown")
            warnings.warn(f"optimizer {self.optimizer.name} applies gradients to variables "
                          f"that are not the model's trainable variables, not logged: "
                          f"{', '.join(unknown)}", stacklevel=3)
        pairs = sorted((index, gradient) for gradient, index, _ in pairs if index is not None)
        if not pairs:
            return
        indices = [index for index, _ in pairs]
        if indices not in self.sites:
            self.sites.append(indices)
        site = self.sites.index(indices)
        gradients = [gradient for _, gradient in pairs]
        step = tf.cast(tf.convert_to_tensor(self.optimizer.iterations), tf.int64)
        due = tf.equal(step % self.every, 0)
        if applied is not None:  # a step the loss scaling skips is not kept
            due = due & applied
        replica_context = tf.distribute.get_replica_context()
        if replica_context is None or replica_context.num_replicas_in_sync == 1:
            self._write_if_due(step, due, gradients, indices, site)
            return

        # Several replicas: sum the gradients and write once, in a cross-replica context,
        # where a branch may reduce (a replica context's branch may not merge).
        def merged(distribution, step, due, *gradients):
            first = distribution.experimental_local_results
            self._write_if_due(first(step)[0], first(due)[0], gradients, indices, site,
                               distribution)

        replica_context.merge_call(merged, args=(step, due, *gradients))

    def _write_if_due(self, step, due, gradients, indices, site, distribution=None):
        """Copies the gradients into the next slot when due and one is free (one branch)."""
        counters = tf.convert_to_tensor(self._counters)
        free = counters[0] - counters[1] < self.slots
        keep = due & free

        def copy():
            if distribution is not None:
                summed = [distribution.reduce(tf.distribute.ReduceOp.SUM, gradient, axis=None)
                          for gradient in gradients]
            else:
                summed = gradients
            slot = tf.reshape(tf.cast(counters[0] % self.slots, tf.int32), [1, 1])
            meta = tf.stack([step, tf.constant(site, tf.int64)])[None]
            for buffer, value in ((self._ring, self._row(summed, indices)),
                                  (self._slot_meta, meta)):
                buffer.assign(tf.tensor_scatter_nd_update(buffer, slot, value))

        tf.cond(keep, copy, lambda: None)
        # Kept, lost: a write of three integers at every call, where a branch would cost more.
        self._counters.assign(counters + tf.stack([
            tf.cast(keep, tf.int64), tf.constant(0, tf.int64), tf.cast(due & ~free, tf.int64)]))

    def _row(self, gradients, indices):
        """The slot's row: each gradient where its variable's region is, zeros elsewhere."""
        scale = self.optimizer.loss_scale_factor
        by_index = dict(zip(indices, gradients))
        parts = []
        for index, region in enumerate(self.regions):
            if index not in by_index:
                parts.append(tf.zeros([region.length]))
                continue
            flat = tf.reshape(tf.cast(tf.convert_to_tensor(by_index[index]), tf.float32), [-1])
            if scale is not None:
                flat = flat / scale
            if region.stride == 1:
                parts.append(flat)
            else:  # reduce_min/max propagate NaN, as the histogram's range must
                parts += [flat[::region.stride], tf.stack([
                    tf.reduce_min(flat), tf.reduce_max(flat),
                    tf.cast(tf.reduce_all(tf.math.is_finite(flat)), tf.float32),
                    tf.norm(flat)])]
        return tf.concat(parts, 0)[None]

    def drain(self) -> tuple[list[Record], int]:
        """The calls kept since the last drain, oldest first, and the due calls lost since."""
        kept, read, lost = (int(value) for value in self._counters.numpy())
        new_lost, self._lost_reported = lost - self._lost_reported, lost
        if kept == read:
            return [], new_lost
        ring, meta = self._ring.numpy(), self._slot_meta.numpy()
        records = []
        for slot in (each % self.slots for each in range(read, kept)):
            step, site = (int(value) for value in meta[slot])
            indices = self.sites[site]
            norms, histograms = [], []
            for index in indices:
                region = self.regions[index]
                values = ring[slot, region.offset:region.offset + region.length]
                if region.stride == 1:
                    # Not np.linalg.norm: its BLAS threads spin after the call, taking the
                    # cores from TensorFlow (measured: +40% per epoch of keras-io's convnet).
                    norms.append(np.sqrt(np.sum(np.square(values, dtype=np.float64))))
                    histograms.append(summaries.histogram_on_host(values, self.buckets))
                else:
                    low, high, finite, norm = values[-SAMPLED_EXTRAS:]
                    norms.append(float(norm))
                    histograms.append(summaries.histogram_on_host(
                        values[:-SAMPLED_EXTRAS], self.buckets, size=region.size,
                        value_range=(low, high, finite > 0)))
            norms.append(np.sqrt(np.sum(np.square(norms))))
            records.append(Record(step, indices, np.asarray(norms), np.stack(histograms)))
        # Only the host writes `read`, while no step runs (batch begins, epoch and train ends).
        self._counters.assign([kept, kept, lost])
        return records, new_lost
