"""`StepRecorder`: an optimizer wrapper through which callbacks see every train step.

Batch callbacks fire once per execution when `steps_per_execution > 1`, and
never see the gradients. Values of every step must therefore be captured
inside the compiled train step. The public point where every train step
meets the callbacks' code is the optimizer: Keras's own `train_step` calls
`optimizer.scale_loss(loss)` and then `optimizer.apply_gradients(...)`, and a
custom `train_step` calls `apply_gradients` (and, where it supports loss
scaling, `scale_loss`). `StepRecorder` wraps the user's optimizer, as
`keras.optimizers.LossScaleOptimizer` does, passes both calls on unchanged,
and lets the callbacks that listen add their capture to the traced step.
"""

from __future__ import annotations

import keras
import tensorflow as tf

_LOSS_SCALING = keras.optimizers.LossScaleOptimizer


@keras.saving.register_keras_serializable(package="callbacks")
class StepRecorder(keras.optimizers.Optimizer):
    """Wraps an optimizer so that callbacks can record each train step inside it.

    Updates are the inner optimizer's, bit for bit: `apply` passes the
    gradients to `inner_optimizer.apply`, `scale_loss` returns the inner
    optimizer's, and `iterations`, `learning_rate` (settable, as
    `LearningRateScheduler` needs) and the saved variables are the inner
    optimizer's. Before passing a call on, it calls the listeners that
    callbacks (`BatchLossLogger`, `ModeStrengthLogger`,
    `AppliedGradientLogger`) add while they run; with none it adds nothing
    to the step. A listener is traced into the step: a callback that adds or
    removes one traces the train function again (`make_train_function`).

    Under mixed precision wrap the loss scaling, and tell `compile` not to
    add its own: `compile(optimizer=StepRecorder(LossScaleOptimizer(Adam())),
    auto_scale_loss=False)`. The listeners then see the loss before scaling
    and the gradients unscaled, as the inner `LossScaleOptimizer` passes
    them on, with the flag of whether the step is applied (it skips steps
    with non-finite gradients). With the loss scaling outside
    (`LossScaleOptimizer(StepRecorder(Adam()))`, which `compile` builds by
    itself under the `mixed_float16` policy) the listeners see the unscaled
    gradients of the applied steps, but not the loss. The TensorFlow backend
    only.

    Args:
        inner_optimizer: the Keras optimizer that updates the weights, or a
            `LossScaleOptimizer` around it; a name ("adam") or config as
            `keras.optimizers.get` takes them.
        name: the optimizer's name (default: derived from the class name).

    Raises:
        ValueError: `inner_optimizer` is not a Keras optimizer, or is a
            `StepRecorder` already.

    Example:

    ```python
    model.compile(optimizer=StepRecorder(keras.optimizers.Adam(1e-3)), loss="mse")
    model.fit(x, y, steps_per_execution=32, callbacks=[BatchLossLogger("logs/run")])
    ```
    """

    def __init__(self, inner_optimizer, name=None, **kwargs):
        if isinstance(inner_optimizer, (str, dict)):
            inner_optimizer = keras.optimizers.get(inner_optimizer)
        if not isinstance(inner_optimizer, keras.optimizers.Optimizer):
            raise ValueError("StepRecorder wraps a Keras optimizer, received: "
                             f"{inner_optimizer!r}")
        if find_recorder(inner_optimizer) is not None:
            raise ValueError(f"{inner_optimizer.name} is a StepRecorder already: one is enough")
        if kwargs:
            raise ValueError(f"StepRecorder takes no optimizer arguments, received: "
                             f"{sorted(kwargs)}; give them to the inner optimizer")
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = inner_optimizer
        self._listeners = ()

    @property
    def listeners(self) -> tuple:
        """The listeners in the order they were added."""
        return self._listeners

    def add_listener(self, listener) -> None:
        """Adds `listener` to the steps traced from now on.

        A listener may define `record_loss(loss)`, called with the loss
        `scale_loss` receives, and `record_gradients(grads, variables,
        applied)`, called before the update with the gradients the updating
        optimizer receives (unscaled by an inner `LossScaleOptimizer`) and
        `applied`, None or a boolean tensor telling whether the update is
        applied; both are called while the step is traced, in the step's
        replica context, with `iterations` still the count before the update.
        """
        if listener not in self._listeners:
            self._listeners = (*self._listeners, listener)

    def remove_listener(self, listener) -> None:
        """Removes `listener` (if present) from the steps traced from now on."""
        self._listeners = tuple(each for each in self._listeners if each is not listener)

    def build(self, var_list):
        self.inner_optimizer.build(var_list)
        super().build(var_list)

    @property
    def variables(self):
        return self._variables + self.inner_optimizer.variables

    def scale_loss(self, loss):
        for listener in self._listeners:
            if hasattr(listener, "record_loss"):
                listener.record_loss(loss)
        return self.inner_optimizer.scale_loss(loss)

    def apply(self, grads, trainable_variables=None):
        if not self.built:
            self.build(trainable_variables)
        grads = list(grads)
        if trainable_variables is not None:
            trainable_variables = list(trainable_variables)
        listening = [each for each in self._listeners if hasattr(each, "record_gradients")]
        if listening:
            seen, applied = grads, None
            if isinstance(self.inner_optimizer, _LOSS_SCALING):  # as it unscales them
                scaling = self.inner_optimizer
                variables = trainable_variables or [None] * len(grads)
                seen = [gradient if gradient is None
                        or getattr(variable, "overwrite_with_gradient", False)
                        else keras.ops.divide(gradient, scaling.dynamic_scale)
                        for gradient, variable in zip(grads, variables)]
                applied = scaling.check_finite(grads)
            for listener in listening:
                listener.record_gradients(seen, trainable_variables, applied)
        return self.inner_optimizer.apply(grads, trainable_variables)

    @property
    def updating_optimizer(self):
        """The optimizer whose update rule changes the weights: inside any loss scaling."""
        optimizer = self.inner_optimizer
        while isinstance(optimizer, _LOSS_SCALING):
            optimizer = optimizer.inner_optimizer
        return optimizer

    def stateless_apply(self, optimizer_variables, grads, trainable_variables):
        raise NotImplementedError("StepRecorder records inside TensorFlow's stateful train step "
                                  "only; use the inner optimizer under this backend")

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        if "inner_optimizer" in vars(self):  # the base class sets it before it is known
            self.inner_optimizer.learning_rate = learning_rate

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    @property
    def gradient_accumulation_steps(self):
        inner = vars(self).get("inner_optimizer")
        return inner.gradient_accumulation_steps if inner is not None else None

    @gradient_accumulation_steps.setter
    def gradient_accumulation_steps(self, value):
        if value:
            raise ValueError("StepRecorder accumulates no gradients itself; give "
                             "gradient_accumulation_steps to the inner optimizer")

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def get_config(self):
        return {"name": self.name,
                "inner_optimizer": keras.saving.serialize_keras_object(self.inner_optimizer)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        inner = keras.saving.deserialize_keras_object(config.pop("inner_optimizer"),
                                                      custom_objects=custom_objects)
        return cls(inner, **config)


def find_recorder(optimizer) -> StepRecorder | None:
    """The `StepRecorder` that is `optimizer` or that a `LossScaleOptimizer` wraps, else None."""
    while isinstance(optimizer, _LOSS_SCALING):
        optimizer = optimizer.inner_optimizer
    return optimizer if isinstance(optimizer, StepRecorder) else None


def require_recorder(optimizer, callback: str) -> StepRecorder:
    """`find_recorder(optimizer)`, or a ValueError telling how to compile with one."""
    recorder = find_recorder(optimizer)
    if recorder is None:
        kind = type(optimizer).__name__ if optimizer is not None else "None"
        raise ValueError(
            f"{callback} records every train step through the optimizer, and optimizer "
            f"{getattr(optimizer, 'name', optimizer)!r} ({kind}) is not a StepRecorder: compile "
            "with optimizer=callbacks.StepRecorder(your_optimizer)")
    return recorder


class StepBuffer:
    """The values of the last `capacity` steps, written inside the traced step.

    A listener's `write(value)` puts the step's value in slot
    `iterations % capacity` (the count before the update); the host reads
    them back by that count. With several replicas their values are averaged
    (the global batch's).
    """

    def __init__(self, recorder: StepRecorder, capacity: int, shape, strategy, name: str):
        self.recorder, self.capacity, self.shape = recorder, int(capacity), tuple(shape)
        with strategy.scope():
            self.variable = tf.Variable(
                tf.zeros([self.capacity, *self.shape]), trainable=False,
                synchronization=tf.VariableSynchronization.ON_WRITE,
                aggregation=tf.VariableAggregation.MEAN, name=name)

    def write(self, value) -> None:
        """Traced: `value` (of `shape`) into the slot of the step being taken."""
        slot = tf.reshape(tf.cast(self.recorder.iterations % self.capacity, tf.int32), [1, 1])
        self.variable.assign(tf.tensor_scatter_nd_update(
            self.variable, slot, tf.reshape(tf.cast(value, tf.float32), [1, *self.shape])))

    def read(self, counts) -> list:
        """The values written at these `iterations` counts (among the last `capacity`)."""
        values = self.variable.numpy()
        return [values[count % self.capacity] for count in counts]
