"""The layers of any Keras model that apply an activation, and how to tap z and f(z).

A layer applies an activation when it is an `Activation` layer, one of the
activation layers (`ReLU`, `LeakyReLU`, `PReLU`, `ELU`, `Softmax`: f is the
layer's `call`), or any layer whose own non-linear `activation` attribute it
applies as `activation(z)` (`Dense`, every convolution, `EinsumDense`, ...).
Layers are found recursively through nested models and layers, so this
works the same for Sequential, functional and subclassed models. Recurrent
layers and wrappers (`LSTM`, `GRU`, `Bidirectional`, `TimeDistributed`, ...)
apply their activations inside a loop, where z cannot be taken out: they
are not looked into.

A `Tap` records z and f(z) while the model runs: `tapped()` swaps the
layer's activation (or `call`) for a recording wrapper for the duration of
one forward pass, meant to be traced once inside a `tf.function`.
"""

from __future__ import annotations

import contextlib
import dataclasses

import keras
import tensorflow as tf

# f is the layer's own `call`.
ACTIVATION_LAYER_TYPES = (keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.PReLU,
                          keras.layers.ELU, keras.layers.Softmax)
# Apply their layers' activations inside a loop: weights and gradients only.
NOT_LOOKED_INTO = (keras.layers.RNN, keras.layers.Bidirectional, keras.layers.Wrapper)
_SOFTMAX_NAMES = ("softmax", "log_softmax")


@dataclasses.dataclass(eq=False)
class Tap:
    """One layer applying an activation, and what it recorded during a forward pass.

    `path` names the layer inside the model: its name, after the names of
    the nested models or layers holding it (`encoder/conv1d`).
    """

    layer: keras.layers.Layer
    path: str
    attribute: str  # "activation" or "call": what the wrapper replaces
    function: object = None  # f, the layer's own activation or `call`; set by `tapped`
    calls: list = dataclasses.field(default_factory=list)  # (z, f(z)) of each call
    in_subgraph: bool = False  # called inside a loop or branch of the traced function

    @property
    def channel_axis(self) -> int:
        """The axis of the units: a convolution's channels, otherwise the last axis."""
        return 1 if getattr(self.layer, "data_format", None) == "channels_first" else -1

    @property
    def kind(self) -> str:
        """`softmax`, `log_softmax` (their f' is the Jacobian's diagonal) or `elementwise`."""
        if isinstance(self.layer, keras.layers.Softmax):
            return "softmax"
        name = getattr(self.function, "__name__", "") if self.attribute == "activation" else ""
        return name if name in _SOFTMAX_NAMES else "elementwise"

    def derivative(self, z):
        """f'(z) entry by entry, by automatic differentiation of f at z (float32).

        For softmax and log-softmax, whose Jacobian is not diagonal, the
        diagonal: s(1 - s) and 1 - s.
        """
        if self.kind == "softmax":
            s = self.function(z)
            return s * (1.0 - s)
        if self.kind == "log_softmax":
            return 1.0 - tf.exp(self.function(z))
        with tf.GradientTape() as tape:
            tape.watch(z)
            fz = self.function(z)
        return tape.gradient(fz, z)


def find_taps(model) -> list[Tap]:
    """Returns a `Tap` for every layer of `model` that applies an activation, in layer order."""
    taps, seen = [], {id(model)}

    def visit(parent, prefix):
        for layer in _sublayers(parent):
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            path = prefix + layer.name
            attribute = _tapped_attribute(layer)
            if attribute:
                taps.append(Tap(layer, path, attribute))
            if not isinstance(layer, NOT_LOOKED_INTO):
                visit(layer, path + "/")

    visit(model, "")
    return taps


def _sublayers(layer) -> list:
    # Keras's own traversal (`Model.layers` uses it); it also sees layers held by plain layers.
    return list(layer._flatten_layers(include_self=False, recursive=False))


def _tapped_attribute(layer):
    if isinstance(layer, ACTIVATION_LAYER_TYPES):
        return "call"
    if isinstance(layer, keras.layers.Activation):
        return "activation"  # even linear: a layer of its own is there to be looked at
    activation = vars(layer).get("activation")  # properties (e.g. LSTM's) are not wrapped
    if callable(activation) and activation is not keras.activations.linear:
        return "activation"
    return None


@contextlib.contextmanager
def tapped(taps):
    """Within: each tap's layer records its (z, f(z)) into `tap.calls` when called.

    Meant for one forward pass traced in a `tf.function`: the recorded
    tensors belong to that graph. A call inside a nested graph (a loop or a
    branch) marks the tap `in_subgraph`, since its tensors cannot be used
    outside.
    """
    graph = tf.compat.v1.get_default_graph()
    saved = []
    try:
        for tap in taps:
            tap.calls, tap.in_subgraph = [], False
            had_own = tap.attribute in vars(tap.layer)
            original = getattr(tap.layer, tap.attribute)
            saved.append((tap, had_own, original))
            tap.function = original
            object.__setattr__(tap.layer, tap.attribute, _recorder(tap, original, graph))
        yield taps
    finally:
        for tap, had_own, original in saved:
            if had_own:
                object.__setattr__(tap.layer, tap.attribute, original)
            else:
                object.__delattr__(tap.layer, tap.attribute)


def _recorder(tap, original, graph):
    def record(z, *args, **kwargs):
        fz = original(z, *args, **kwargs)
        tap.calls.append((z, fz))
        if tf.compat.v1.get_default_graph() is not graph:
            tap.in_subgraph = True
        return fz

    return record
