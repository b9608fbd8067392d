"""The loss `fit` minimises, called as Keras's train step calls it."""

from __future__ import annotations

import inspect

import tensorflow as tf


def compute_loss(function, x, y, y_pred, sample_weight, training: bool):
    """Calls `function` (a model's `compute_loss`) as Keras's train step does.

    `Model.compute_loss` returns the compiled losses with their weights plus
    `model.losses` (regularisation and `add_loss` terms), each scaled by
    1 / replicas under a distribution strategy. Overrides written before
    Keras 3.3 have no `training` argument; it is passed only when accepted.
    """
    arguments = {"x": x, "y": y, "y_pred": y_pred, "sample_weight": sample_weight}
    if "training" in inspect.signature(function).parameters:
        arguments["training"] = training
    return function(**arguments)


def unscaled(loss):
    """The global batch's loss, as float32: undoes Keras's per-replica scaling.

    Under a distribution strategy Keras divides every loss term by the number
    of replicas so that summing gradients over replicas averages them; this
    is Keras's own `unscale_loss_for_distribution`, and does nothing with
    one replica.
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return tf.cast(loss, tf.float32) * replicas
