"""The layers of a Keras model that apply an activation, and how to see their z and f(z).

A layer applies an activation when it is an `Activation` layer, one of the
activation layers (`ReLU`, `LeakyReLU`, `PReLU`, `ELU`, `Softmax`: f is the
layer's `call`), or any layer whose own non-linear `activation` attribute it
applies as `activation(z)` (`Dense`, every convolution, `EinsumDense`, ...).

Only public Keras APIs are used, and the model's layers are left as they
are. z and f(z) come from the model's functional graph: `clone_model`, given
the model's own layers and a `call_function`, calls each layer of the graph
again on symbolic tensors, and `TapModel` is the functional model of those
calls whose outputs are the model's outputs and, per activating layer, f(z)
(the layer's output, which feeds the rest of the graph) and z: the layer's
input for the activation layers; for a layer applying its own activation,
the output of its twin, a copy of ours (`from_config` with a linear
activation) applied to the same input and reading the layer's own weights
(`Tapping.weight_mapping`, through a `keras.StatelessScope`). Nested
functional and Sequential models are tapped recursively, their layers named
by path (`encoder/conv1d`).

Not looked into: recurrent layers and wrappers (`LSTM`, `GRU`,
`Bidirectional`, `TimeDistributed`, ...), which apply their activations
inside a loop; custom layers, whose `call` is one step of the graph; and
subclassed models, of whose `call` Keras keeps no graph (`unseen_layers`
names their activating layers). A loss function (`loss_fn`) gets a
`ModelView` of the model, whose functional and Sequential parts
(`model.encoder`) run their tap models.
"""

from __future__ import annotations

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
    """One layer applying an activation, and what it recorded during a traced forward pass.

    `path` names the layer inside the model: its name, after the names of
    the nested models holding it (`encoder/conv1d`).
    """

    layer: keras.layers.Layer
    path: str
    function: object  # f: the layer's own activation, or its `call`
    twin: keras.layers.Layer | None = None  # computes z, for a layer applying its own activation
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
        if isinstance(self.layer, ACTIVATION_LAYER_TYPES):
            return "elementwise"
        name = getattr(self.function, "__name__", "")
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


def has_graph(layer) -> bool:
    """Whether `layer` is a functional or built Sequential model whose `call` is Keras's own."""
    if not isinstance(layer, keras.Model):
        return False
    owner = next(cls for cls in type(layer).__mro__ if "call" in vars(cls))
    if owner.__module__.split(".")[0] != "keras":
        return False  # a `call` of the user's own: what it does is not in the graph
    try:
        return bool(layer.inputs) and bool(layer.outputs)
    except (AttributeError, ValueError):  # subclassed, or a Sequential not built yet
        return False


def applies_activation(layer) -> bool:
    """Whether `layer` applies an activation (see the module's docstring)."""
    return (isinstance(layer, (*ACTIVATION_LAYER_TYPES, keras.layers.Activation))
            or _own_activation(layer) is not None)


def _own_activation(layer):
    if isinstance(layer, (keras.layers.Activation, NOT_LOOKED_INTO)):
        return None
    activation = vars(layer).get("activation")  # not a property computed by the layer
    if callable(activation) and activation is not keras.activations.linear:
        return activation
    return None


def unseen_layers(model, through_parts: bool) -> list[str]:
    """Paths of the activating layers of `model` that no tap sees, in layer order.

    Those called by a subclassed model's own `call`; with `through_parts`
    (a loss function gets a `ModelView`), those of the functional and
    Sequential models a subclassed model holds are seen.
    """
    def visit(parent, prefix, seen, parts_seen):
        paths = []
        for layer in parent.layers:
            path = prefix + layer.name
            if not seen and applies_activation(layer):
                paths.append(path)
            if isinstance(layer, keras.Model):
                paths += visit(layer, path + "/", has_graph(layer) and (seen or parts_seen), False)
        return paths

    return visit(model, "", has_graph(model), through_parts)


class TapModel:
    """A functional or Sequential model's forward pass that also records z and f(z).

    `model` is the functional model over the same layers (and twins) whose
    outputs are the original model's flattened outputs, then f(z) and then
    z of each activating layer call (`slots`, in graph order).
    """

    def __init__(self, source, prefix: str, tapping: "Tapping"):
        if isinstance(source, keras.Sequential):
            inputs, outputs = source.inputs[0], source.outputs[0]
        else:
            inputs, outputs = source.input, source.output
        self.structure = outputs
        self.slots: list[Tap] = []
        self._tapping = tapping
        names = {layer.name for layer in source.layers}
        activations, preactivations = [], []

        def call_function(layer, *args, **kwargs):
            if has_graph(layer):  # a nested model: its own layers, tapped in this graph
                nested = tapping.tap_model(layer, f"{prefix}{layer.name}/")
                outputs, nested_activations, nested_preactivations = nested.split(
                    nested.model(*args, **kwargs))
                activations.extend(nested_activations)
                preactivations.extend(nested_preactivations)
                self.slots.extend(nested.slots)
                return outputs
            output = layer(*args, **kwargs)
            tap = tapping.tap_of(layer, prefix + layer.name, names)
            if tap is not None and tap.twin is not None:
                z = tap.twin(*args, **kwargs)
                if not tapping.twin_fits(tap):
                    tap = None
            elif tap is not None:
                z = args[0] if args else kwargs["inputs"]
            if tap is not None:
                activations.append(output)
                preactivations.append(z)
                self.slots.append(tap)
            return output

        view = keras.Model(inputs, outputs, name=_unique(f"{source.name}_view", names))
        clone = keras.models.clone_model(view, clone_function=lambda layer: layer,
                                         call_function=call_function)
        flat = keras.tree.flatten(clone.output)
        self.model = keras.Model(clone.input, [*flat, *activations, *preactivations],
                                 name=_unique(f"{source.name}_taps", names))

    def split(self, values):
        """(the model's outputs, f(z) of each slot, z of each slot) of the tap model's values."""
        values = list(values) if isinstance(values, (list, tuple)) else [values]
        count, taps = len(keras.tree.flatten(self.structure)), len(self.slots)
        outputs = keras.tree.pack_sequence_as(self.structure, values[:count])
        return outputs, values[count:count + taps], values[count + taps:]

    def __call__(self, *args, **kwargs):
        """Runs the model (inside the traced pass); records each slot's (z, f(z))."""
        outputs, activations, preactivations = self.split(self.model(*args, **kwargs))
        in_subgraph = tf.compat.v1.get_default_graph() is not self._tapping.graph
        for tap, fz, z in zip(self.slots, activations, preactivations):
            tap.calls.append((z, fz))
            tap.in_subgraph = tap.in_subgraph or in_subgraph
        # As Keras's own functional models return them.
        return outputs[0] if isinstance(outputs, (list, tuple)) and len(outputs) == 1 else outputs


class Tapping:
    """The taps of one model, and the forward passes that record them.

    Built outside any traced function (the twins create their weights then).
    `forward` is the model's `TapModel` when it has a graph; `view` is what
    a loss function gets instead of the model.
    """

    def __init__(self, model, loss_fn=None):
        self.taps: list[Tap] = []
        self.skipped: list[str] = []  # activating layers whose z no twin computes
        self.graph = None  # of the pass being traced
        self._taps_by_layer = {}
        self._tap_models = {}
        self.forward = self.tap_model(model, "") if has_graph(model) else None
        if loss_fn is not None and self.forward is None:
            for layer in model.layers:
                if has_graph(layer):
                    self.tap_model(layer, f"{layer.name}/")
        self.view = ModelView(model, self) if loss_fn is not None else None

    def tap_model(self, model, prefix: str) -> TapModel:
        if id(model) not in self._tap_models:
            self._tap_models[id(model)] = TapModel(model, prefix, self)
        return self._tap_models[id(model)]

    def runner(self, value):
        """The tap model standing in for `value`, when it is a tapped model; else None."""
        return self._tap_models.get(id(value)) if isinstance(value, keras.Model) else None

    def tap_of(self, layer, path: str, names: set):
        """The tap of `layer` (the same at every call), or None when it applies no activation."""
        if id(layer) in self._taps_by_layer:
            return self._taps_by_layer[id(layer)]
        tap = None
        if isinstance(layer, ACTIVATION_LAYER_TYPES):
            tap = Tap(layer, path, layer.call)
        elif isinstance(layer, keras.layers.Activation):
            tap = Tap(layer, path, layer.activation)  # even linear: a layer there to be looked at
        elif _own_activation(layer) is not None:
            twin = _twin(layer, names)
            if twin is None:
                self.skipped.append(path)
            else:
                tap = Tap(layer, path, layer.activation, twin)
        self._taps_by_layer[id(layer)] = tap
        if tap is not None:
            self.taps.append(tap)
        return tap

    def twin_fits(self, tap: Tap) -> bool:
        """Whether the (built) twin of `tap` has its layer's weights; if not, the tap is dropped."""
        if [weight.shape for weight in tap.twin.weights] == [
                weight.shape for weight in tap.layer.weights]:
            return True
        self.taps.remove(tap)
        self._taps_by_layer[id(tap.layer)] = None
        self.skipped.append(tap.path)
        return False

    def weight_mapping(self) -> list:
        """(twin weight, layer weight) pairs: a `StatelessScope` gives each twin its layer's."""
        return [(own, theirs) for tap in self.taps if tap.twin is not None
                for own, theirs in zip(tap.twin.weights, tap.layer.weights)]

    def twins(self) -> list:
        return [tap.twin for tap in self.taps if tap.twin is not None]

    def begin(self) -> None:
        """Starts a traced pass: forgets what the taps recorded before."""
        self.graph = tf.compat.v1.get_default_graph()
        for tap in self.taps:
            tap.calls, tap.in_subgraph = [], False

    def end(self) -> None:
        """Ends a traced pass: the graph's tensors are not kept past it."""
        self.graph = None
        for tap in self.taps:
            tap.calls = []


class ModelView:
    """What a loss function gets for the model: the model itself, except that calling it (when
    it has a graph) or its functional and Sequential parts (`model.encoder(x)`) runs their
    tap models, which return what the model or part returns."""

    __slots__ = ("_view_model", "_view_tapping")

    def __init__(self, model, tapping: Tapping):
        self._view_model = model
        self._view_tapping = tapping

    def __getattr__(self, name):
        value = getattr(self._view_model, name)
        return self._view_tapping.runner(value) or value

    def __call__(self, *args, **kwargs):
        runner = self._view_tapping.runner(self._view_model)
        return (runner or self._view_model)(*args, **kwargs)


def _twin(layer, names: set):
    """`layer` rebuilt from its config with a linear activation, or None if it cannot be.

    It computes z only: no regularizer, constraint or random initializer (its
    weights are zeros, read as the layer's at every pass).
    """
    try:
        config = dict(layer.get_config())
        for key, value in config.items():
            if key.endswith("_initializer") and value is not None:
                config[key] = "zeros"
            elif key.endswith(("_regularizer", "_constraint")):
                config[key] = None
        config.update(activation="linear", name=_unique(f"{layer.name}_z", names))
        return type(layer).from_config(config)
    except (NotImplementedError, TypeError, ValueError):  # a config that does not rebuild it
        return None


def _unique(name: str, names: set) -> str:
    """`name`, with `_` appended until no operation of the graph has it; then taken."""
    while name in names:
        name += "_"
    names.add(name)
    return name
