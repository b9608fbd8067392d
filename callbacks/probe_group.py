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
"""

from __future__ import annotations

import contextlib

import numpy as np
import tensorflow as tf

from callbacks import activation_layers, losses, schedule

_OPEN_GROUPS = "_probe_logger_open_groups"  # on a model: groups whose first log is to come
_TRACED = "_probe_logger_functions"  # on a model: group key -> (function, tags, objects)


class SharedPass:
    """One forward and one backward pass of the probe, inside the traced function.

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

    def __init__(self, model, probe, needs: set, taps=(), loss_fn=None):
        self.y_pred = self.loss = None
        self.variable_gradients, self.activation_gradients = [], {}
        if not needs:
            return
        x, y, sample_weight = probe
        variables = list(model.trainable_variables)
        with tf.GradientTape() as tape:
            with activation_layers.tapped(taps):
                if loss_fn is not None:
                    self.loss = self.user_loss(loss_fn, model, x, y, sample_weight)
                else:
                    self.y_pred = call_model(model, x)
            if loss_fn is None:
                self.loss = losses.unscaled(losses.compute_loss(
                    model.compute_loss, x, y, self.y_pred, sample_weight, training=False))
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
        open_groups = self.model.__dict__.get(_OPEN_GROUPS, [])
        if self in open_groups:
            open_groups.remove(self)
        traced = _traced_functions(self.model)
        key = tuple(member._trace_key(self.model) for member in self.members)
        if key not in traced:
            for member in self.members:
                member._prepare(self.model)
            # The model's metrics are left as they are (see `_frozen_metrics`).
            with _frozen_metrics(self.model):
                function = tf.function(_GroupComputation(self.model, self.members, self.loss_fn),
                                       autograph=False).get_concrete_function(self.tensors)
            tags = [member._tags() for member in self.members]
            # The entry holds what the keys name by id, so that no id is reused while it lives.
            traced[key] = (function, tags, identified_objects(self.model))
        self._function, tags, _ = traced[key]
        for member, (scalar_tags, histogram_tags) in zip(self.members, tags):
            member._scalar_tags, member._histogram_tags = scalar_tags, histogram_tags
        self._log(self._current_step())

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
        taps = [tap for member in self.members for tap in getattr(member, "_taps", ())]
        shared = SharedPass(self.model, probe, needs, taps, self.loss_fn)
        outputs = [member._compute(probe, shared) for member in self.members]
        for tap in taps:
            tap.calls = []  # the graph's tensors are not kept past the trace
        return outputs


def join_group(logger) -> ProbeGroup:
    """The open group of `logger`'s fit that takes it, or a new one led by it."""
    model = logger.model
    # Groups of another fit never started (that fit failed before its first batch).
    open_groups = [group for group in model.__dict__.get(_OPEN_GROUPS, [])
                   if group.params is logger.params]
    object.__setattr__(model, _OPEN_GROUPS, open_groups)  # past Keras's attribute tracking
    for group in open_groups:
        if group.accepts(logger):
            group.members.append(logger)
            if logger._uses_loss:
                group.loss_fn = logger.loss_fn
            return group
    group = ProbeGroup(logger)
    if logger.params is not None:
        open_groups.append(group)
    return group


def call_model(model, x):
    # Keras's train step passes `training` only to models whose `call` accepts it.
    if getattr(model, "_call_has_training_arg", True):
        return model(x, training=False)
    return model(x)


def identified_objects(model) -> list:
    """What a traced function reads besides its arguments: the compiled loss and the variables."""
    return [getattr(model, "_compile_loss", None), *model.trainable_variables,
            *model.non_trainable_variables]


def _traced_functions(model) -> dict:
    """The traced functions kept with `model`: group key -> (function, tags per logger, objects)."""
    functions = model.__dict__.get(_TRACED)
    if functions is None:
        functions = {}
        # Set past Keras's attribute tracking: a private cache, not model state.
        object.__setattr__(model, _TRACED, functions)
    return functions


def _same_probe(first, second) -> bool:
    if first is second:
        return True
    first, second = (tf.nest.flatten(probe.as_tuple()) for probe in (first, second))
    return len(first) == len(second) and all(
        a is b or (np.shape(a) == np.shape(b) and np.array_equal(a, b))
        for a, b in zip(first, second))


@contextlib.contextmanager
def _frozen_metrics(model):
    """Within: the model's metrics ignore updates.

    `compute_loss` updates the compiled loss's per-output metrics (and an
    override may update its own); the probe function is traced here, so its
    loss leaves them as `fit` computes them.
    """
    metrics = [metric for metric in model.metrics if "update_state" not in vars(metric)]
    for metric in metrics:
        object.__setattr__(metric, "update_state", _ignore)
    try:
        yield
    finally:
        for metric in metrics:
            object.__delattr__(metric, "update_state")


def _ignore(*args, **kwargs):
    return None
