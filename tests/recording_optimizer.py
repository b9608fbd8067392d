"""`RecordingAdam`: Adam that records the norms of the gradients it applies, step by step.

The independent record the applied-gradient tests compare the logged values
with: the norms are computed in the optimizer's own `apply` (after
`LossScaleOptimizer` unscaled them, before Adam's own `loss_scale_factor`
division), from the gradients summed over replicas.
"""

import keras
import tensorflow as tf


class RecordingAdam(keras.optimizers.Adam):
    """Adam recording, per step, each gradient's norm and their global norm.

    Args:
        count: the number of variables it is applied to.
        steps: the most steps recorded.
        **kwargs: Adam's.
    """

    def __init__(self, count, steps=256, **kwargs):
        super().__init__(**kwargs)
        # Created where the optimizer is, in the scope of a distribution strategy if any.
        object.__setattr__(self, "recorded", tf.Variable(
            tf.zeros([steps, count + 1]), trainable=False,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA))

    def apply(self, grads, trainable_variables=None):
        grads = list(grads)
        dense = [tf.cast(tf.convert_to_tensor(gradient), tf.float32) for gradient in grads]
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            dense = context.all_reduce(tf.distribute.ReduceOp.SUM, dense)
        norms = tf.stack([tf.norm(gradient) for gradient in dense])
        row = tf.concat([norms, [tf.norm(norms)]], 0)
        index = tf.reshape(tf.cast(tf.convert_to_tensor(self.iterations), tf.int32), [1, 1])
        self.recorded.assign(tf.tensor_scatter_nd_update(self.recorded, index, row[None]))
        return super().apply(grads, trainable_variables)

    def norms_at(self, steps):
        """(steps, count + 1): the recorded per-variable norms and global norm at `steps`."""
        return self.recorded.numpy()[list(steps)]
