"""`ProbeLogger`: what the gradient, weight and activation loggers share.

A fixed probe batch, a lazily created writer into `<log_dir>/train`, and the
schedule: step 0 (the initial weights), every `every_n_steps` optimizer
steps, and the final weights at the end of training. Subclasses implement
`_compute(probe, shared)`, which computes every value of one log from the
probe and the shared forward and backward pass (`probe_group.SharedPass`);
the loggers of one `fit` with the same probe and schedule run in a single
compiled call (`probe_group.ProbeGroup`, on the model's device, histograms
bucketed there too), and the host then writes each one's events. The traced
function is kept for the model (`probe_group.traced_functions`, which does
not keep the model alive), so a later `fit` of the same model with loggers
of the same kinds, settings and probe shapes calls it again instead of
tracing it again.
"""

from __future__ import annotations

import inspect
import os

import keras
import numpy as np
import tensorflow as tf

from callbacks import backend, schedule
from callbacks.event_writer import EventWriter
from callbacks.probe_group import SharedPass, call_model, identified_objects, join_group
from callbacks.probe import DEFAULT_PROBE_SIZE, Probe, flatten, map_structure, read_probe

DEFAULT_BUCKETS = schedule.DEFAULT_BUCKETS


class ProbeLogger(keras.callbacks.Callback):
    """Base class of the callbacks that log values computed on a probe batch.

    Works on any Keras model: Sequential, functional or subclassed (built or
    not when `fit` starts: an unbuilt model is built by calling it on one
    probe example), nested, with several inputs or outputs and `None`
    dimensions. Values that involve the loss use exactly the loss `fit`
    minimises, `model.compute_loss`: the compiled losses with their weights
    plus `model.losses` (regularisation), with the probe's sample weights,
    in inference mode (Dropout off, BatchNorm on its moving statistics).
    Computing them updates no Keras variable: not the model's metrics, nor
    its seed generators (the pass runs in a `keras.StatelessScope`).

    Args:
        log_dir: run folder; summaries go to `<log_dir>/train`, where Keras's
            `TensorBoard` callback writes its training summaries.
        probe: the probe batch, as `fit` takes data: `(x, y)` or
            `(x, y, sample_weight)`, each an array or a list, tuple or dict of
            arrays (`y` as the loss expects), or a `tf.data.Dataset` yielding
            such batches. Of arrays longer than `probe_size`, `probe_size`
            examples are chosen with `seed`, so passing the training set gives
            the default probe; of a dataset, the first `probe_size` examples
            are taken once, when the logger is created.
        every_n_steps: optimizer steps between logs. `None` picks about
            twenty logs over the run. With `steps_per_execution > 1` a log
            happens at the first batch end at or after each multiple, and is
            stamped with the true optimizer step.
        histogram_buckets: buckets per histogram summary.
        probe_size: largest probe batch kept from `probe`.
        seed: chooses the probe examples kept from arrays.
        loss_fn: for the loggers that use the loss, `loss_fn(model, x, y)`
            returning the scalar loss of the probe batch `x, y` (tensors, as
            the probe holds them), used instead of `model.compute_loss`; it
            may call the model or its parts as it likes (an encoder and a
            decoder), and is traced once, like the rest of the log. With a
            probe holding sample weights it must accept a `sample_weight`
            keyword.

    Raises:
        ValueError: an argument is invalid (the message names the value
            received); at `fit`, the probe's examples do not have the shape
            the model's inputs expect, or the loss is needed and the model
            has a custom `train_step`, no compiled loss and no
            `compute_loss` of its own, and no `loss_fn` was given.
        RuntimeError: Keras runs on another backend than TensorFlow.
    """

    _uses_loss = True  # whether `_compute` evaluates the loss on the probe
    _tapping = None  # the taps the shared pass records (`activation_layers.Tapping`), if any

    def __init__(
        self,
        log_dir,
        probe,
        every_n_steps=None,
        histogram_buckets=DEFAULT_BUCKETS,
        probe_size=DEFAULT_PROBE_SIZE,
        seed=0,
        loss_fn=None,
    ):
        super().__init__()
        backend.require_tensorflow(type(self).__name__)
        log_dir = schedule.check_log_arguments(log_dir, every_n_steps, histogram_buckets)
        schedule.check_positive_int("probe_size", probe_size)
        if loss_fn is not None and not callable(loss_fn):
            raise ValueError("`loss_fn` must be a function loss_fn(model, x, y) -> scalar loss, "
                             f"received: {loss_fn!r}")
        self.log_dir = log_dir
        self.every_n_steps = every_n_steps
        self.histogram_buckets = int(histogram_buckets)
        self.probe = read_probe(probe, probe_size, seed)
        self.loss_fn = loss_fn
        if loss_fn is not None and not self._uses_loss:
            raise ValueError(f"{type(self).__name__} does not use the loss; it takes no "
                             f"`loss_fn`, received: {_name(loss_fn)}")
        if loss_fn is not None and self.probe.sample_weight is not None and not _takes_keyword(
                loss_fn, "sample_weight"):
            raise ValueError("the probe holds sample weights, so `loss_fn` must accept a "
                             f"`sample_weight` keyword; received {_name(loss_fn)}, which does not")
        # Creates its file at the first write: nothing exists when nothing is logged.
        self._train_writer = EventWriter(os.path.join(self.log_dir, "train"))
        self._tensors = None
        self._every = None
        self._group = None

    @property
    def probe_x(self):
        return self.probe.x

    @property
    def probe_y(self):
        return self.probe.y

    def _check_probe_fits(self, model):
        for name, array, expected in _probe_inputs(model, self.probe.x):
            shape = tuple(array.shape[1:])
            if len(shape) != len(expected) or any(
                    want is not None and got != want for got, want in zip(shape, expected)):
                raise ValueError(
                    f"`probe` {name} has example shape {shape} but {model.name} expects "
                    f"{expected}")

    def _check_loss_known(self, model):
        """Raises unless the loss of the probe is known: compiled, `compute_loss`, or `loss_fn`."""
        if not self._uses_loss or self.loss_fn is not None:
            return
        if (getattr(model, "loss", None) is not None or not schedule.has_own_train_step(model)
                or type(model).compute_loss is not keras.Model.compute_loss):
            return  # the loss Keras's step minimises, or the model's own `compute_loss`
        raise ValueError(
            f"{type(self).__name__}: {model.name} has no compiled loss and a train_step of its "
            "own, so the loss it minimises is unknown. Pass loss_fn=lambda model, x, y: ... "
            f"(the scalar loss of a batch) to {type(self).__name__}, or compile the model with "
            "a loss (model.compile(loss=...)) that its train_step minimises")

    def on_train_begin(self, logs=None):
        model = self.model
        self._check_loss_known(model)
        self._check_probe_fits(model)
        self._every = schedule.resolve_every(self.every_n_steps, self.params)
        self._tensors = _to_tensors(self.probe)
        self._build(model)
        self._group = join_group(self)
        self._start()

    def on_train_batch_begin(self, batch, logs=None):
        # Every logger of the fit has joined its group by now: the step-0 log, once for all.
        if self._group.leader is self and not self._group.started:
            self._group.start()

    def on_epoch_begin(self, epoch, logs=None):
        if self._group.leader is self:
            self._group.clock.epoch_began()

    def on_train_batch_end(self, batch, logs=None):
        if self._group.leader is self:
            self._group.log_if_due(batch)

    def on_train_end(self, logs=None):
        if self._group.leader is self:  # the first of the group's loggers to end
            self._group.finish()
        self._train_writer.close()  # a later fit writes a new file and leaves this one intact
        self._tensors = self._group = None

    def _write(self, step: int, scalar_values, histogram_values) -> None:
        """Writes one log's values as events at `step`."""
        scalars = [(tag, value) for tag, value in zip(self._scalar_tags, scalar_values.tolist())
                   if self._should_write(tag)]
        self._train_writer.write(step, scalars, zip(self._histogram_tags, histogram_values))

    def _should_write(self, scalar_tag: str) -> bool:
        """Whether to write `scalar_tag` in the log being written."""
        return True

    def _build(self, model):
        """Builds a model without weights with one eager pass on one probe example.

        `fit` builds it only when it traces its first step, after
        `on_train_begin`; the probe's checks and the trace key need its
        variables. A model without a `call` of its own (a GAN) is built
        through its parts, by the `loss_fn`.
        """
        if model.built or model.weights:
            return
        x, y, sample_weight = self._one_example()
        with model.distribute_strategy.scope():
            if self.loss_fn is not None:
                SharedPass.user_loss(self.loss_fn, model, x, y, sample_weight)
            else:
                call_model(model, x)

    def _one_example(self):
        return tuple(map_structure(lambda tensor: tensor[:1], part) for part in self._tensors)

    def _trace_key(self, model) -> tuple:
        """What the traced function depends on besides the model: a new key traces anew.

        A new `compile` (a new loss) or a change of the trainable variables
        changes the key too.
        """
        probe_spec = tf.nest.map_structure(
            lambda tensor: None if tensor is None else (tuple(tensor.shape), tensor.dtype.name),
            self._tensors)
        return (type(self), self.histogram_buckets, repr(probe_spec), id(self.loss_fn),
                tuple(id(each) for each in identified_objects(model)))

    def _prepare(self, model) -> None:
        """Sets up what `_compute` needs before it is traced (not called when reused)."""
        raise NotImplementedError

    def _pass_needs(self) -> set:
        """What `_compute` takes from the shared pass (of `SharedPass.NEEDS`); after `_prepare`."""
        return set()

    def _start(self) -> None:
        """Resets per-fit state at the start of every fit."""

    def _tags(self) -> tuple[list[str], list[str]]:
        """The scalar and histogram tags `_compute` fills, in order; asked after tracing."""
        raise NotImplementedError

    def _compute(self, probe, shared: "SharedPass"):
        """Returns (scalars of shape (T,), histograms of shape (S, k, 3)) for one log.

        `probe` is the (x, y, sample_weight) tensors; `shared` holds what
        `_pass_needs` asked for, computed once for every logger of the group.
        Traced without autograph once per model and group (`_trace_key` of
        each); the order matches `_tags()`.
        """
        raise NotImplementedError


def _takes_keyword(function, name: str) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: let the call tell
        return True
    return any(parameter.name == name or parameter.kind is parameter.VAR_KEYWORD
               for parameter in parameters)


def _name(function) -> str:
    return getattr(function, "__qualname__", None) or type(function).__name__


def _to_tensors(probe: Probe):
    """x, y and sample_weight as tensors, floats in Keras's float type as `fit` makes them.

    They are the traced function's arguments, not graph constants, which keeps
    large probes out of the graph and lets a later probe of the same shapes
    reuse the function.
    """
    def convert(array):
        if np.issubdtype(array.dtype, np.floating):
            return tf.convert_to_tensor(array, keras.backend.floatx())
        return tf.convert_to_tensor(array)

    return tuple(map_structure(convert, part)
                 for part in (probe.x, probe.y, probe.sample_weight))


def _probe_inputs(model, x):
    """Yields (name, probe array, expected example shape) for the inputs the model declares.

    Only functional and Sequential models declare inputs; x is matched to
    them by position (an array or list) or by input name (a dict). What
    cannot be matched is left for the model's own call to check.
    """
    try:
        inputs = list(model.inputs or [])
    except (AttributeError, ValueError):  # subclassed, or a Sequential not built yet
        return
    if isinstance(x, dict):
        by_name = {tensor.name: tensor for tensor in inputs}
        pairs = [(f"x[{key!r}]", array, by_name.get(key)) for key, array in x.items()]
    else:
        leaves = flatten(x, "x")
        if len(leaves) != len(inputs):
            return
        pairs = [(name, array, tensor) for (name, array), tensor in zip(leaves, inputs)]
    for name, array, tensor in pairs:
        if tensor is not None and hasattr(array, "shape"):
            yield name, array, tuple(tensor.shape[1:])
