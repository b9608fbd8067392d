"""`ActivationLogger`: pre-activations, activations, derivatives and back-propagated gradients."""

from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf

from callbacks import activation_layers, summaries, tags
from callbacks.probe_group import SharedPass
from callbacks.probe_logger import ProbeLogger

SATURATION_THRESHOLD = 0.01  # |f'(z)| below 1% of the layer's largest counts as saturated
HISTOGRAM_KINDS = (tags.PREACTIVATIONS, tags.ACTIVATIONS, tags.ACTIVATION_DERIVATIVE,
                   tags.BACKPROP_GRADIENTS)


class ActivationLogger(ProbeLogger):
    """Logs, per hidden layer applying an activation, what flows through it on a probe batch.

    A layer applies an activation when it is an `Activation`, `ReLU`,
    `LeakyReLU`, `PReLU`, `ELU` or `Softmax` layer, or has a non-linear
    `activation` attribute it applies as `activation(z)`: `Dense`,
    `Conv1D/2D/3D`, `Conv*Transpose`, `SeparableConv*`, `DepthwiseConv*`,
    `EinsumDense` and any layer written the same way (its config rebuilding
    it with `activation="linear"`). A layer is hidden when its f(z) is not
    one of the model's outputs (with a `loss_fn`, which calls the model
    itself, every layer called once is logged, output layers included). For
    each such layer, with `<act>` its name (after the names of the models
    holding it, e.g. `encoder/conv1d`), into `<log_dir>/train`:

    - histogram `preactivations/<act>`: z, the argument of the activation,
    - histogram `activations/<act>`: f(z),
    - histogram `activation_derivative/<act>`: f'(z), by automatic
      differentiation of the layer's own activation at z, so any elementwise
      activation works (exactly 1 everywhere for `linear`); for softmax, the
      diagonal of its Jacobian, s(1 - s),
    - histogram `backprop_gradients/<act>`: dLoss/df(z), the gradient
      back-propagated to the layer's output (Glorot & Bengio 2010),
    - scalar `dead_fraction/<act>`: share of units whose f'(z) is 0 on every
      probe example; a unit is an entry of the last axis (of a convolution,
      a channel: 0 at every position of every example),
    - scalar `saturated_fraction/<act>`: share of probe entries whose
      |f'(z)| is below 1% of the layer's largest |f'(z)| on the probe.

    The loss is the one `fit` minimises, in inference mode (see
    `ProbeLogger`). A histogram of more than 65,536 entries (a convolution's,
    counted at every position) keeps its exact range and counts a lattice
    sample of them, scaled to its size (`summaries.histograms`); the dead
    and saturated fractions count every entry.

    Layers are seen in the model's graph, with public Keras APIs only
    (`activation_layers`): the layers of functional and Sequential models,
    nested ones included. Not logged, and named in a warning once per
    logger: the layers a subclassed model calls in its own `call`, of which
    Keras keeps no graph (their weights and gradients are logged by the
    other loggers). With a `loss_fn`, the layers of the functional and
    Sequential parts it calls as attributes of the model it gets
    (`model.encoder(x)`: the model it gets is a stand-in that runs their
    graphs) are logged. Not looked into either: recurrent layers and
    wrappers (`LSTM`, `GRU`, `SimpleRNN`, `ConvLSTM*`, `Bidirectional`,
    `TimeDistributed`), which apply their activations inside a loop, and the
    layers a custom layer calls inside its own `call`. A layer called more
    than once per forward pass (shared), or inside a loop, is named in a
    warning and skipped.

    Args: see `ProbeLogger`.

    Raises:
        ValueError: see `ProbeLogger`.

    Example:

    ```python
    model.fit(x, y, callbacks=[ActivationLogger("logs/run", probe=(x_val, y_val))])
    ```
    """

    _warned_unseen = False  # the warning of the layers no tap sees is given once per logger

    def _start(self):
        unseen = activation_layers.unseen_layers(self.model, self.loss_fn is not None)
        if unseen and not self._warned_unseen:
            self._warned_unseen = True
            warnings.warn(
                f"ActivationLogger: cannot log layers {', '.join(unseen)} of {self.model.name}: "
                "a subclassed model calls them in its own `call`, of which Keras keeps no "
                "graph (their weights and gradients are logged). Build it as a functional or "
                "Sequential model, or pass a loss_fn calling its functional or Sequential "
                "parts (model.encoder(x))", stacklevel=2)

    def _prepare(self, model):
        self._tapping = activation_layers.Tapping(model, self.loss_fn)
        self._logged = []

    def _tags(self):
        paths = tags.unique([tap.path for tap in self._logged])
        scalar_tags = [tags.tag(kind, path) for path in paths
                       for kind in (tags.DEAD_FRACTION, tags.SATURATED_FRACTION)]
        histogram_tags = [tags.tag(kind, path) for path in paths for kind in HISTOGRAM_KINDS]
        return scalar_tags, histogram_tags

    def _pass_needs(self):
        return {SharedPass.ACTIVATION_GRADIENTS}

    def _compute(self, probe, shared):
        self._logged = self._hidden_taps(shared.y_pred)
        if not self._logged:
            return tf.zeros([0]), tf.zeros([0, self.histogram_buckets, 3], tf.float64)
        activations = [tap.calls[0][1] for tap in self._logged]
        backprop = [shared.activation_gradients[tap] for tap in self._logged]
        derivatives, histogram_inputs = [], []
        for tap, activation, gradient in zip(self._logged, activations, backprop):
            z = tf.cast(tap.calls[0][0], tf.float32)
            derivative = tap.derivative(z)
            derivatives.append(derivative)
            histogram_inputs += [z, activation, derivative, gradient]
        axes = [tap.channel_axis for tap in self._logged]
        fractions = tf.stack([dead_fractions(derivatives, axes),
                              saturated_fractions(derivatives)], axis=1)
        return (tf.reshape(fractions, [-1]),
                summaries.histograms(histogram_inputs, self.histogram_buckets))

    def _hidden_taps(self, y_pred):
        """The taps to log: called once, in the traced graph itself, not producing an output."""
        outputs = {id(tensor) for tensor in tf.nest.flatten(y_pred)}
        logged, skipped = [], []
        for tap in self._tapping.taps:
            if not tap.calls:
                continue  # not used by this model's forward pass
            if len(tap.calls) > 1 or tap.in_subgraph:
                skipped.append(tap.path)
            elif id(tap.calls[0][1]) not in outputs:
                logged.append(tap)
        if skipped:
            warnings.warn(
                f"ActivationLogger: cannot log layers {', '.join(skipped)} (called more than "
                "once per forward pass, or inside a loop); skipped", stacklevel=2)
        if self._tapping.skipped:
            warnings.warn(
                f"ActivationLogger: cannot log layers {', '.join(self._tapping.skipped)} (their "
                "config does not rebuild them with a linear activation, which gives z); "
                "skipped", stacklevel=2)
        return logged


def dead_fractions(derivatives, axes=None):
    """Per layer: the share of units whose derivative is 0 on every example.

    A unit is an index along `axes[i]` (default: the last axis) of layer i's
    derivative: for a convolution, a channel, counted at every position.
    """
    axes = axes or [-1] * len(derivatives)
    unit_max = []
    for derivative, axis in zip(derivatives, axes):
        axis = axis % derivative.shape.rank
        others = [index for index in range(derivative.shape.rank) if index != axis]
        unit_max.append(tf.reduce_max(tf.abs(derivative), axis=others))
    layer_of_unit = np.repeat(np.arange(len(derivatives)),
                              [derivative.shape[axis] for derivative, axis in
                               zip(derivatives, axes)])
    dead = tf.cast(tf.concat(unit_max, 0) == 0.0, tf.float32)
    return tf.math.unsorted_segment_mean(dead, layer_of_unit, len(derivatives))


def saturated_fractions(derivatives):
    """Per layer: the share of entries whose |derivative| is below 1% of the layer's largest."""
    fractions = []
    for derivative in derivatives:
        magnitude = tf.abs(derivative)
        threshold = SATURATION_THRESHOLD * tf.reduce_max(magnitude)
        fractions.append(tf.reduce_mean(tf.cast(magnitude < threshold, tf.float32)))
    return tf.stack(fractions)
