"""Measures on a saved network: its forward chain, logits, first-layer gradients, collapse.

Every forward pass here runs the model's own Dense and Activation layers as a
plain chain of TensorFlow ops (`forward`): a Keras functional call costs tens
of milliseconds of overhead, the plain chain about one. Only models that are
such a chain (as training builds them, `reproduce.network`) are accepted.
"""

from __future__ import annotations

import functools

import numpy as np

from reproduce.network import OUTPUT_NAME, dense_name, loss_name

RANK_RTOL = 1e-5  # singular values below this share of the largest count as zero (float32)
OUTPUT = "output"  # `forward` stops: after the output activation,
LOGITS = "logits"  # ... before it,
HIDDEN = "hidden"  # ... or at the output layer's input


def dense_layers(model) -> list:
    """Returns the hidden Dense layers `dense_1 ... dense_N` and the output layer, in order."""
    hidden = [layer for layer in model.layers if layer.name.startswith("dense_")]
    hidden.sort(key=lambda layer: int(layer.name.split("_")[1]))
    return hidden + [model.get_layer(OUTPUT_NAME)]


def chain_layers(model) -> list:
    """The model's layers after its input, checked to be Dense or Activation layers.

    Raises:
        ValueError: the model holds another kind of layer.
    """
    import keras

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    for layer in layers:
        if not isinstance(layer, (keras.layers.Dense, keras.layers.Activation)):
            raise ValueError(f"{layer.name} is not a Dense or Activation layer")
    return layers


def chain(layers: list, hidden, stop: str = OUTPUT):
    """Runs `hidden` through `layers` with plain ops, up to `stop` (OUTPUT, LOGITS, HIDDEN)."""
    import tensorflow as tf

    for layer in layers:
        if hasattr(layer, "kernel"):
            if stop == HIDDEN and layer.name == OUTPUT_NAME:
                return hidden
            hidden = tf.matmul(hidden, layer.kernel) + layer.bias
            if stop == LOGITS and layer.name == OUTPUT_NAME:
                return hidden
        hidden = layer.activation(hidden)
    return hidden


def forward(model, x, stop: str = OUTPUT):
    """The model's output (or its logits, or the output layer's input) on `x`, float32.

    Raises:
        ValueError: the model is not a chain of Dense and Activation layers.
    """
    import tensorflow as tf

    return chain(chain_layers(model), tf.convert_to_tensor(np.asarray(x, np.float32)), stop)


def network_logits(model, x) -> np.ndarray:
    """The network's logits in float64: the output layer's affine part on its float32 input.

    Reading them before the sigmoid/softmax avoids inverting a saturated
    output; the last product in float64 keeps C4's comparison with the
    collapsed map (computed in float64) free of one more float32 rounding.
    """
    output = model.get_layer(OUTPUT_NAME)
    hidden = np.asarray(forward(model, x, HIDDEN), np.float64)
    return hidden @ output.kernel.numpy().astype(np.float64) + output.bias.numpy()


def collapse_linear(model) -> tuple[np.ndarray, np.ndarray]:
    """Collapses an MLP with linear hidden activations into one affine map of its logits.

    With Keras kernels of shape (in, out), x W1 + b1, then (.) W2 + b2, ...
    gives W = W1 W2 ... W_out and b = ((b1 W2 + b2) W3 + b3) ... W_out + b_out.

    Returns:
        (W of shape (inputs, outputs), b of shape (outputs,)), float64.

    Raises:
        ValueError: a hidden activation layer is not linear.
    """
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.Activation) and (
                layer.activation is not keras.activations.linear):
            raise ValueError(f"{layer.name} is not linear; the network does not collapse")
    weight = bias = None
    for layer in dense_layers(model):
        kernel = np.asarray(layer.kernel.numpy(), np.float64)
        layer_bias = np.asarray(layer.bias.numpy(), np.float64)
        weight = kernel if weight is None else weight @ kernel
        bias = layer_bias if bias is None else bias @ kernel + layer_bias
    return weight, bias


def matrix_rank(weight: np.ndarray) -> int:
    """Rank of `weight`, counting singular values above RANK_RTOL of the largest."""
    singular = np.linalg.svd(weight, compute_uv=False)
    if not singular.size or singular[0] == 0:
        return 0
    return int((singular > RANK_RTOL * singular[0]).sum())


def logit_accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of logits: the sign of a single logit, else the largest one."""
    if logits.shape[1] == 1:
        predicted = (logits[:, 0] > 0).astype(np.int64)
    else:
        predicted = logits.argmax(axis=1)
    return float((predicted == np.asarray(y).reshape(-1)).mean())


def pairwise_cosines(vectors: np.ndarray) -> np.ndarray:
    """Cosine similarities of every pair of rows of `vectors`."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    first, second = np.triu_indices(len(vectors), k=1)
    return np.sum(unit[first] * unit[second], axis=1)


def relative_change(changed: np.ndarray, reference: np.ndarray) -> float:
    """||changed - reference|| / ||reference||."""
    return float(np.linalg.norm(changed - reference) / np.linalg.norm(reference))


def loss_function(model):
    """The Keras loss the network was trained with, from its output width."""
    import keras

    units = model.get_layer(OUTPUT_NAME).units
    return keras.losses.get(loss_name(2 if units == 1 else units))


def first_layer_gradients(model, batches) -> list[np.ndarray]:
    """dLoss/dW1 of the first Dense kernel on each (x, y) batch, in one pass.

    Each batch's loss is the compiled loss, a mean over its examples. The
    batches go through the network together and the sum of their losses is
    differentiated with GradientTape with respect to the first
    pre-activation z1 = x W1 + b1; an example's row of that gradient involves
    only its own batch's loss, so batch b's kernel gradient is x_bᵀ dL_b/dz1_b,
    the tape's own MatMul gradient taken per batch. One pass instead of one
    per batch keeps the report fast.

    Returns:
        One float64 array of the kernel's shape per batch.
    """
    import tensorflow as tf

    layers = chain_layers(model)
    first = layers[0]
    sizes = [len(x) for x, _ in batches]
    inputs = np.concatenate([np.asarray(x, np.float32) for x, _ in batches])
    labels = np.concatenate([np.asarray(y) for _, y in batches])
    weights = np.repeat(1.0 / np.asarray(sizes, np.float32), sizes)
    preactivation = tf.matmul(inputs, first.kernel) + first.bias
    with tf.GradientTape() as tape:
        tape.watch(preactivation)
        output = chain(layers[1:], first.activation(preactivation))
        total = tf.reduce_sum(loss_function(model)(labels, output) * weights)
    upstream = np.asarray(tape.gradient(total, preactivation), np.float64)
    bounds = np.cumsum([0, *sizes])
    return [inputs[start:stop].astype(np.float64).T @ upstream[start:stop]
            for start, stop in zip(bounds[:-1], bounds[1:])]


def first_layer_gradient(model, x, y) -> np.ndarray:
    """dLoss/dW1 of the first Dense kernel on one batch (x, y)."""
    return first_layer_gradients(model, [(x, y)])[0]


def kernel_gradient(model, x, y) -> np.ndarray:
    """dLoss/dW1 straight from GradientTape on the Keras model's own call: the slow reference."""
    import tensorflow as tf

    kernel = model.get_layer(dense_name(1)).kernel
    with tf.GradientTape() as tape:
        value = tf.reduce_mean(loss_function(model)(
            y, model(np.asarray(x, np.float32), training=False)))
    return np.asarray(tape.gradient(value, kernel), np.float64)


def backprop_formula_gradient(model, x, y) -> np.ndarray:
    """dLoss/dW1 of a linear network by hand: x^T delta (W2 ... W_out)^T.

    delta = dLoss/dlogits is the error signal; x is the input itself.
    """
    import tensorflow as tf

    logits = forward(model, x, LOGITS)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = tf.reduce_mean(loss_function(model)(
            y, model.get_layer(OUTPUT_NAME).activation(logits)))
    delta = np.asarray(tape.gradient(value, logits), np.float64)
    kernels = [np.asarray(layer.kernel.numpy(), np.float64) for layer in dense_layers(model)]
    downstream = functools.reduce(np.matmul, kernels[1:])
    return np.asarray(x, np.float64).T @ delta @ downstream.T
