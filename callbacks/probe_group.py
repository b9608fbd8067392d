"""The probe loggers of one `fit` that share a probe and a schedule, logged by one compiled call.

`GradientLogger` and `ActivationLogger` both need a forward and a backward
pass of the probe; apart, each traced, instantiated and ran its own. Loggers
of one `fit` (the same `params` dict, which Keras hands to every callback of
a `fit`) on the same model, with equal probes and the same resolved
frequency, form a `ProbeGroup`, at most one logger of each class. Its first
logger (the leader) logs for all of them: one function, traced once per
model and group, computes the `SharedPass` (one forward pass, one backward
pass for every gradient asked for) and then every logger's values; each
logger writes its own. The step-0 log waits for the first batch to begin,
when every logger of the `fit` has joined.

What is kept for a model (its open groups, its traced functions) is kept
here, in weak dictionaries keyed by the model, never on the model: the
traced function's Python closure is dropped once traced, and the entries
hold nothing that holds the model, so a model dropped by its user is
freed, while a model used again (`reproduce`'s model cache) finds its
traced function.
"""

from __future__ import annotations

import inspect
import weakref

import keras
import numpy as np
import tensorflow as tf

from callbacks import losses, schedule

# Kept for the models they are about, past Keras's objects: nothing here keeps a model alive.
_OPEN_GROUPS = weakref.WeakKeyDictionary()  # model -> weak refs to groups whose first log is due
_TRACED = weakref.WeakKeyDictionary()  # model -> {group key: (function, tags, objects)}


class SharedPass:
    """One forward and one backward pass of the probe, inside the traced function.

    The forward pass and the loss run in a `keras.StatelessScope`: no Keras
    variable (a metric's, a seed generator's) is updated by them, so the
    model's metrics are left as `fit` computes them.

    Attributes (each set when asked for through `NEEDS`):
        y_pred: the model's predictions, in inference mode; None with a
            `loss_fn`, which calls the model itself.
        loss: the loss `fit` minimises, on the probe, unscaled from any
            distribution strategy; or `loss_fn(model, x, y)`.
        variable_gradients: dLoss/dW of each trainable variable, dense.
        activation_gradients: dLoss/df(z) of each tap called once, by tap.
    """

    VARIABLE_GRADIENTS = "variable_gradients"
    ACTIVATION_GRADIENTS = "activation_gradients"
    NEEDS = (VARIABLE_GRADIENTS, ACTIVATION_GRADIENTS)

    def __init__(self, model, probe, needs: set, tapping=None, loss_fn=None):
        self.y_pred = self.loss = None
        self.variable_gradients, self.activation_gradients = [], {}
        if not needs:
            return
        x, y, sample_weight = probe
        variables = list(model.trainable_variables)
        with tf.GradientTape() as tape:
            # Made in the tape: the variables' reads it maps are the ones differentiated.
            with probe_scope(model, tapping):
                if loss_fn is not None:
                    target = model if tapping is None else tapping.view
                    self.loss = self.user_loss(loss_fn, target, x, y, sample_weight)
                else:
                    forward = None if tapping is None else tapping.forward
                    self.y_pred = call_model(model, x) if forward is None else forward(
                        x, training=False)
                    self.loss = losses.unscaled(losses.compute_loss(
                        model.compute_loss, x, y, self.y_pred, sample_weight, training=False))
        taps = [] if tapping is None else tapping.taps
        tapped = [tap for tap in taps if len(tap.calls) == 1 and not tap.in_subgraph]
        sources = variables if self.VARIABLE_GRADIENTS in needs else []
        if self.ACTIVATION_GRADIENTS in needs:
            sources = sources + [tap.calls[0][1] for tap in tapped]
        # One backward pass for every gradient; an embedding's comes as IndexedSlices.
        gradients = [tf.convert_to_tensor(gradient) for gradient in tape.gradient(
            self.loss, sources, unconnected_gradients=tf.UnconnectedGradients.ZERO)]
        if self.VARIABLE_GRADIENTS in needs:
            self.variable_gradients = gradients[:len(variables)]
            gradients = gradients[len(variables):]
        if self.ACTIVATION_GRADIENTS in needs:
            self.activation_gradients = dict(zip(tapped, gradients))

    @staticmethod
    def user_loss(loss_fn, model, x, y, sample_weight):
        """`loss_fn(model, x, y)` (with `sample_weight=` when there are any), as float32.

        Raises:
            ValueError: it did not return a scalar.
        """
        weights = {} if sample_weight is None else {"sample_weight": sample_weight}
        loss = tf.convert_to_tensor(loss_fn(model, x, y, **weights))
        if loss.shape.rank != 0:
            raise ValueError(f"`loss_fn` must return a scalar loss, returned a tensor of shape "
                             f"{tuple(loss.shape)}")
        return tf.cast(loss, tf.float32)


def probe_scope(model, tapping=None, traced=True) -> keras.StatelessScope:
    """The scope of the probe's forward pass and loss: Keras variables read, none updated.

    Inside a `StatelessScope` Keras reads regularised weights from its
    mapping, so every trainable variable is mapped to itself; each twin's
    weights (`activation_layers.Tapping`) are mapped to its layer's. Losses
    added during the pass (activity regularisers, `add_loss`) are collected
    in it, where `model.losses` finds them. Variables created in it (the
    compiled loss's metrics, built on an eager pass) are initialised at its
    end, unless `traced`.
    """
    mapping = [(variable, variable) for variable in model.trainable_variables]
    if tapping is not None:
        mapping += tapping.weight_mapping()
    return keras.StatelessScope(state_mapping=mapping, collect_losses=True,
                                initialize_variables=not traced)


class ProbeGroup:
    """Probe loggers of one `fit` logged together; see the module's docstring."""

    def __init__(self, leader):
        self.members = [leader]
        self.model = leader.model
        self.params = leader.params
        self.every = leader._every
        self.tensors = leader._tensors
        self.probe = leader.probe
        self.loss_fn = leader.loss_fn if leader._uses_loss else None
        self.clock = schedule.StepClock(leader.model, leader.params)
        self.started = False
        self._function = None
        self._next_step = None
        self._last_logged_step = None

    @property
    def leader(self):
        return self.members[0]

    def accepts(self, logger) -> bool:
        return (not self.started and logger.model is self.model and logger.params is self.params
                and logger._every == self.every
                and all(type(member) is not type(logger) for member in self.members)
                and all(member.loss_fn is logger.loss_fn for member in self.members
                        if member._uses_loss and logger._uses_loss)
                and _same_probe(logger.probe, self.probe))

    def start(self) -> None:
        """Traces (or takes) the group's function, and writes the first log."""
        self.started = True
        _OPEN_GROUPS[self.model] = [ref for ref in _OPEN_GROUPS.get(self.model, [])
                                    if ref() not in (None, self)]
        traced = traced_functions(self.model)
        key = self._trace_key()
        if key not in traced:
            self._build_loss()
            key = self._trace_key()  # the compiled loss of several outputs adds metrics
        if key not in traced:
            for member in self.members:
                member._prepare(self.model)
            computation = _GroupComputation(self.model, self.members, self.loss_fn)
            function = tf.function(computation, autograph=False).get_concrete_function(
                self.tensors)
            computation.forget()
            tags = [member._tags() for member in self.members]
            # What the key names by id, so that no id is reused while the entry lives, and the
            # twins whose weights the function reads. Nothing that holds the model.
            kept = [*identified_objects(self.model),
                    *(member._tapping.twins() for member in self.members if member._tapping)]
            traced[key] = (function, tags, kept)
        self._function, tags, _ = traced[key]
        for member, (scalar_tags, histogram_tags) in zip(self.members, tags):
            member._scalar_tags, member._histogram_tags = scalar_tags, histogram_tags
        self._log(self._current_step())

    def _trace_key(self) -> tuple:
        return tuple(member._trace_key(self.model) for member in self.members)

    def _build_loss(self) -> None:
        """Builds the compiled loss with one eager pass on one probe example, before tracing.

        Keras builds it at the first train step; built here, its metrics are
        not created inside the traced function. The pass updates nothing.
        """
        if self.loss_fn is not None or not any(member._uses_loss for member in self.members):
            return
        x, y, sample_weight = self.members[0]._one_example()  # the leader's probe, the group's
        with self.model.distribute_strategy.scope(), probe_scope(self.model, traced=False):
            losses.compute_loss(self.model.compute_loss, x, y, call_model(self.model, x),
                                sample_weight, training=False)

    def log_if_due(self, batch: int) -> None:
        self.clock.batch_ended(batch)
        step = self._current_step()
        if step >= self._next_step:
            self._log(step)

    def finish(self) -> None:
        """The final log, unless the last one was at this step."""
        if not self.started:  # a fit without a batch
            self.start()
        step = self._current_step()
        if step != self._last_logged_step:
            self._log(step)

    def _current_step(self) -> int:
        return self.clock.now()

    def _log(self, step: int) -> None:
        outputs = self._function(self.tensors)
        for member, (scalar_values, histogram_values) in zip(self.members, outputs):
            member._write(step, scalar_values.numpy(), histogram_values.numpy())
        self._last_logged_step = step
        self._next_step = (step // self.every + 1) * self.every


class _GroupComputation:
    """The traced body: the shared pass, then each logger's values."""

    def __init__(self, model, members, loss_fn):
        self.model = model
        self.members = members
        self.loss_fn = loss_fn

    def __call__(self, probe):
        needs = set().union(*(member._pass_needs() for member in self.members))
        tapping = next((member._tapping for member in self.members if member._tapping), None)
        if tapping is not None:
            tapping.begin()
        try:
            shared = SharedPass(self.model, probe, needs, tapping, self.loss_fn)
            return [member._compute(probe, shared) for member in self.members]
        finally:
            if tapping is not None:
                tapping.end()

    def forget(self) -> None:
        """Drops the model and the loggers once traced: the traced function keeps neither."""
        self.model = self.members = self.loss_fn = None


def join_group(logger) -> ProbeGroup:
    """The open group of `logger`'s fit that takes it, or a new one led by it."""
    model = logger.model
    # Groups of another fit never started (that fit failed before its first batch).
    open_groups = [group for group in (ref() for ref in _OPEN_GROUPS.get(model, []))
                   if group is not None and group.params is logger.params]
    _OPEN_GROUPS[model] = [weakref.ref(group) for group in open_groups]
    for group in open_groups:
        if group.accepts(logger):
            group.members.append(logger)
            if logger._uses_loss:
                group.loss_fn = logger.loss_fn
            return group
    group = ProbeGroup(logger)
    if logger.params is not None:
        _OPEN_GROUPS[model].append(weakref.ref(group))
    return group


def call_model(model, x):
    """`model(x)` in inference mode, as Keras's steps call it."""
    # Keras passes `training` only to models whose `call` accepts it.
    if "training" in inspect.signature(model.call).parameters:
        return model(x, training=False)
    return model(x)


def identified_objects(model) -> list:
    """What a traced function depends on besides its arguments: the compiled loss (a new
    `compile` makes a new optimizer and new metrics, a new loss for a new `loss`) and the
    variables."""
    return [model.loss, model.optimizer, *model.metrics, *model.trainable_variables,
            *model.non_trainable_variables]


def traced_functions(model) -> dict:
    """The traced functions kept for `model`: group key -> (function, tags per logger, objects)."""
    return _TRACED.setdefault(model, {})


def _same_probe(first, second) -> bool:
    if first is second:
        return True
    first, second = (tf.nest.flatten(probe.as_tuple()) for probe in (first, second))
    return len(first) == len(second) and all(
        a is b or (np.shape(a) == np.shape(b) and np.array_equal(a, b))
        for a, b in zip(first, second))
