"""Keras callbacks that log what Keras 3's TensorBoard callback does not.

They import nothing from `reproduce`, so they work on any Keras model.
"""

from callbacks.batch_loss import BatchLossLogger

__all__ = ["BatchLossLogger"]
