"""The gradients an optimizer applies, summarised inside the compiled train step.

`OptimizerCapture.install()` puts a wrapper around one optimizer's public
`apply` (which `apply_gradients` calls) for the duration of a `fit`; it is
traced into whatever train step calls the optimizer, Keras's own or a
custom one. At each call whose step (the optimizer's `iterations` before
the update) is a multiple of `every`, the wrapper computes, on the device,
each gradient's histogram and L2 norm and the call's global norm, and
writes them into a ring of `slots` records held in variables; other calls
cost one comparison. The host drains the ring at batch ends (`drain`).

The gradients recorded are the ones the optimizer receives to apply:
divided by the optimizer's `loss_scale_factor` if it has one; under a
`LossScaleOptimizer`, those of its inner optimizer, unscaled, on the steps
that are applied (a step with non-finite gradients is skipped, and not
recorded); under a distribution strategy with several replicas, summed
over the replicas (what the optimizer's update uses). Clipping and weight
decay, which the optimizer applies afterwards, are not in them.
"""

from __future__ import annotations

import dataclasses
import warnings

import keras
import numpy as np
import tensorflow as tf

from callbacks import summaries


def applying_optimizer(optimizer):
    """The optimizer that receives the unscaled gradients: a `LossScaleOptimizer`'s inner one."""
    while isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        optimizer = optimizer.inner_optimizer
    return optimizer


@dataclasses.dataclass
class Record:
    """One recorded call: its step, and which variables it applied gradients to."""

    step: int
    applied: np.ndarray  # bool, one per variable
    norms: np.ndarray  # one per variable (0 where not applied), then the call's global norm
    histograms: np.ndarray  # (variables, buckets, 3)


class OptimizerCapture:
    """Records, every `every` steps of `optimizer`, the gradients it applies to `variables`.

    Args:
        optimizer: a Keras optimizer (a `LossScaleOptimizer` is looked through).
        variables: the variables whose gradients are recorded, in tag order;
            gradients of other variables are applied but not recorded.
        every: record calls at steps 0, every, 2 * every, ...
        slots: records kept between two drains.
        buckets: buckets per histogram.
        strategy: the model's distribution strategy; the buffers live in its scope.
    """

    def __init__(self, optimizer, variables, every: int, slots: int, buckets: int, strategy):
        self.optimizer = applying_optimizer(optimizer)
        if self.optimizer.gradient_accumulation_steps:
            raise ValueError(
                f"cannot record the applied gradients of optimizer {self.optimizer.name}: it "
                f"accumulates gradients over gradient_accumulation_steps="
                f"{self.optimizer.gradient_accumulation_steps} and applies their mean "
                "internally; log probe gradients with GradientLogger instead")
        self.variables = list(variables)
        self.every, self.slots, self.buckets = int(every), int(slots), int(buckets)
        self.recorded = set()  # indices of the variables it applies to in the traced steps
        self._index = {id(variable): index for index, variable in enumerate(self.variables)}
        self._warned = set()
        count = len(self.variables)
        with strategy.scope():
            # Written in a replica context with one replica, in a cross-replica one otherwise.
            options = dict(trainable=False, synchronization=tf.VariableSynchronization.ON_WRITE,
                           aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
            self._histograms = tf.Variable(tf.zeros([self.slots, count, self.buckets, 3],
                                                    tf.float64), **options)
            self._norms = tf.Variable(tf.zeros([self.slots, count + 1]), **options)
            self._applied = tf.Variable(tf.zeros([self.slots, count], tf.bool), **options)
            self._steps = tf.Variable(tf.zeros([self.slots], tf.int64), **options)
            self._count = tf.Variable(tf.constant(0, tf.int64), **options)
        self._drained = 0
        self._original = None

    def install(self) -> None:
        """Wraps the optimizer's `apply` until `remove`."""
        optimizer = self.optimizer
        self._had_own = "apply" in vars(optimizer)
        self._original = original = optimizer.apply

        def apply(grads, trainable_variables=None):
            grads = list(grads)
            if trainable_variables is not None:
                trainable_variables = list(trainable_variables)
                self._record(grads, trainable_variables)
            elif "no variables" not in self._warned:
                self._warned.add("no variables")
                warnings.warn(f"optimizer {optimizer.name}.apply was called without its "
                              "variables; its gradients are not recorded", stacklevel=2)
            return original(grads, trainable_variables)

        object.__setattr__(optimizer, "apply", apply)  # past Keras's attribute tracking

    def remove(self) -> None:
        if self._original is None:
            return
        if self._had_own:
            object.__setattr__(self.optimizer, "apply", self._original)
        else:
            object.__delattr__(self.optimizer, "apply")
        self._original = None

    def _record(self, grads, variables) -> None:
        """Adds the recording to the traced step: a record when the step is due."""
        pairs = [(gradient, self._index.get(id(variable)), variable)
                 for gradient, variable in zip(grads, variables) if gradient is not None]
        unknown = [variable.path for gradient, index, variable in pairs if index is None]
        if unknown and "unknown" not in self._warned:
            self._warned.add("unknown")
            warnings.warn(f"optimizer {self.optimizer.name} applies gradients to variables "
                          f"that are not the model's trainable variables, not recorded: "
                          f"{', '.join(unknown)}", stacklevel=3)
        pairs = [(gradient, index) for gradient, index, _ in pairs if index is not None]
        if not pairs:
            return
        self.recorded.update(index for _, index in pairs)
        gradients = [gradient for gradient, _ in pairs]
        indices = [index for _, index in pairs]
        step = tf.cast(tf.convert_to_tensor(self.optimizer.iterations), tf.int64)
        due = tf.equal(step % self.every, 0)
        scale = self.optimizer.loss_scale_factor
        replica_context = tf.distribute.get_replica_context()
        if replica_context is None or replica_context.num_replicas_in_sync == 1:
            tf.cond(due, lambda: self._write(step, gradients, indices, scale), tf.no_op)
            return

        # Several replicas: sum the gradients and write once, in a cross-replica context,
        # where a branch may reduce (a replica context's branch may not merge).
        def merged(distribution, step, due, *gradients):
            first = distribution.experimental_local_results

            def write():
                summed = [distribution.reduce(tf.distribute.ReduceOp.SUM, gradient, axis=None)
                          for gradient in gradients]
                return self._write(first(step)[0], summed, indices, scale)

            return tf.cond(first(due)[0], write, tf.no_op)

        replica_context.merge_call(merged, args=(step, due, *gradients))

    def _write(self, step, gradients, indices, scale):
        gradients = [tf.cast(tf.convert_to_tensor(gradient), tf.float32) for gradient in gradients]
        if scale is not None:
            gradients = [gradient / scale for gradient in gradients]
        count = len(self.variables)
        norms = summaries.norms_each(gradients)
        rows = tf.constant(np.asarray(indices)[:, None], tf.int32)
        slot = tf.reshape(tf.cast(self._count % self.slots, tf.int32), [1, 1])
        record = [
            (self._histograms, tf.scatter_nd(rows, summaries.histograms_each(gradients, self.buckets),
                                             [count, self.buckets, 3])),
            (self._norms, tf.concat([tf.scatter_nd(rows, norms, [count]),
                                     [tf.norm(norms)]], 0)),
            (self._applied, tf.scatter_nd(rows, tf.ones([len(indices)], tf.int32), [count]) > 0),
            (self._steps, step),
        ]
        updates = [buffer.assign(tf.tensor_scatter_nd_update(buffer, slot, value[None]))
                   for buffer, value in record]
        with tf.control_dependencies(updates):
            return self._count.assign_add(1).op

    def drain(self) -> tuple[list[Record], int]:
        """The records made since the last drain, oldest first, and how many were overwritten."""
        count = int(self._count.numpy())
        if count == self._drained:
            return [], 0
        first = max(self._drained, count - self.slots)
        lost = first - self._drained
        histograms, norms, applied, steps = (buffer.numpy() for buffer in (
            self._histograms, self._norms, self._applied, self._steps))
        records = [Record(int(steps[slot]), applied[slot], norms[slot], histograms[slot])
                   for slot in (each % self.slots for each in range(first, count))]
        self._drained = count
        return records, lost
