"""`ActivationLogger`: pre-activations, activations, derivatives and back-propagated gradients."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import tensorflow as tf

from callbacks import summaries, tags
from callbacks.probe_logger import ProbeLogger

SATURATION_THRESHOLD = 0.01  # |f'(z)| below 1% of the layer's largest counts as saturated
_NON_ELEMENTWISE = ("softmax", "log_softmax")
HISTOGRAM_KINDS = (tags.PREACTIVATIONS, tags.ACTIVATIONS, tags.ACTIVATION_DERIVATIVE,
                   tags.BACKPROP_GRADIENTS)


class ActivationLogger(ProbeLogger):
    """Logs, per hidden activation layer, what flows through it on a probe batch.

    A hidden activation layer is a `keras.layers.Activation` layer, or a
    `Dense` layer with a non-linear activation of its own (its
    pre-activation is then computed from its input and weights), whose output
    is not a model output. For each such layer `<act>` (its name), into
    `<log_dir>/train`:

    - histogram `preactivations/<act>`: z,
    - histogram `activations/<act>`: f(z),
    - histogram `activation_derivative/<act>`: f'(z), by automatic
      differentiation of the layer's own activation, so any elementwise
      activation works (exactly 1 everywhere for `linear`),
    - histogram `backprop_gradients/<act>`: dLoss/df(z), the gradient
      back-propagated to the layer's output (Glorot & Bengio 2010),
    - scalar `dead_fraction/<act>`: share of units whose f'(z) is 0 on every
      probe example,
    - scalar `saturated_fraction/<act>`: share of probe entries (example x
      unit) whose |f'(z)| is below 1% of the layer's largest |f'(z)| on the
      probe.

    Only functional and sequential models expose their layers' tensors; other
    layers carrying an activation, and layers used more than once, are named
    in one warning and skipped.

    Args: see `ProbeLogger`.

    Example:

    ```python
    model.fit(x, y, callbacks=[ActivationLogger("logs/run", probe=(x_val, y_val))])
    ```
    """

    def _prepare(self, model):
        self._layers = self._find_layers(model)
        outputs = []
        for layer in self._layers:
            outputs += [layer.input, layer.output]
        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
        self._probe_model = keras.Model(inputs, outputs + list(model.outputs))
        names = [layer.name for layer in self._layers]
        scalar_tags = [tags.tag(kind, name) for name in names
                       for kind in (tags.DEAD_FRACTION, tags.SATURATED_FRACTION)]
        histogram_tags = [tags.tag(kind, name) for name in names for kind in HISTOGRAM_KINDS]
        return scalar_tags, histogram_tags

    @staticmethod
    def _find_layers(model):
        if not getattr(model, "inputs", None) or not getattr(model, "outputs", None):
            warnings.warn(
                f"ActivationLogger: {model.name} is not a functional or sequential model; "
                "no activations are logged",
                stacklevel=3,
            )
            return []
        found, skipped = [], []
        for layer in model.layers:
            if not _has_activation(layer):
                continue
            if len(layer._inbound_nodes) != 1:
                skipped.append(layer)
            elif any(layer.output is output for output in model.outputs):
                continue  # the output layer is not a hidden activation
            elif isinstance(layer, (keras.layers.Activation, keras.layers.Dense)) and (
                getattr(layer.activation, "__name__", "") not in _NON_ELEMENTWISE
            ):
                found.append(layer)
            else:
                skipped.append(layer)
        if skipped:
            names = ", ".join(layer.name for layer in skipped)
            warnings.warn(f"ActivationLogger: cannot log layers {names}; skipped", stacklevel=3)
        return found

    def _compute(self):
        if not self._layers:
            return tf.zeros([0]), tf.zeros([0, self.histogram_buckets, 3], tf.float64)
        with tf.GradientTape() as tape:
            results = self._probe_model(self.probe_x, training=False)
            n_hidden = 2 * len(self._layers)
            hidden, y_pred = results[:n_hidden], results[n_hidden:]
            loss = self._probe_loss(self.model, y_pred[0] if len(y_pred) == 1 else y_pred)
        activations = hidden[1::2]
        backprop = tape.gradient(loss, activations)
        derivatives, histogram_inputs = [], []
        for index, layer in enumerate(self._layers):
            z = tf.cast(self._preactivation(layer, hidden[2 * index]), tf.float32)
            with tf.GradientTape() as derivative_tape:
                derivative_tape.watch(z)
                fz = layer.activation(z)
            derivative = derivative_tape.gradient(fz, z)
            derivatives.append(derivative)
            histogram_inputs += [z, activations[index], derivative, backprop[index]]
        flat = summaries.Flat.of(histogram_inputs)
        fractions = tf.stack([dead_fractions(derivatives),
                              saturated_fractions(derivatives)], axis=1)
        return tf.reshape(fractions, [-1]), flat.histograms(self.histogram_buckets)

    @staticmethod
    def _preactivation(layer, layer_input):
        if isinstance(layer, keras.layers.Activation):
            return layer_input
        z = tf.matmul(tf.cast(layer_input, layer.kernel.dtype), layer.kernel)
        return z + layer.bias if layer.use_bias else z


def _has_activation(layer) -> bool:
    """An Activation layer (even linear), or a layer whose own activation is non-linear."""
    if isinstance(layer, keras.layers.Activation):
        return True
    activation = getattr(layer, "activation", None)
    return activation is not None and activation is not keras.activations.linear


def dead_fractions(derivatives):
    """Per layer: the share of units (last axis) whose derivative is 0 on every example."""
    unit_max = [tf.reduce_max(tf.abs(tf.reshape(derivative, [-1, derivative.shape[-1]])), axis=0)
                for derivative in derivatives]
    layer_of_unit = np.repeat(np.arange(len(derivatives)),
                              [derivative.shape[-1] for derivative in derivatives])
    dead = tf.cast(tf.concat(unit_max, 0) == 0.0, tf.float32)
    return tf.math.unsorted_segment_mean(dead, layer_of_unit, len(derivatives))


def saturated_fractions(derivatives):
    """Per layer: the share of entries whose |derivative| is below 1% of the layer's largest."""
    magnitude = summaries.Flat.of([tf.abs(derivative) for derivative in derivatives])
    threshold = SATURATION_THRESHOLD * magnitude.segment_max()
    saturated = tf.cast(magnitude.values < tf.gather(threshold, magnitude.segments), tf.float32)
    return tf.math.segment_mean(saturated, magnitude.segments)
