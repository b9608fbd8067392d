"""`ModeStrengthLogger`: how strongly a Dense network maps chosen input directions to outputs."""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from callbacks import backend, step_recorder, tags
from callbacks.event_writer import EventWriter


class ModeStrengthLogger(keras.callbacks.Callback):
    """Logs the strength u_αᵀ W v_α of each input-output mode at every optimizer step.

    W is the collapsed end-to-end map of a network of `Dense` layers: the
    product of their kernels in order (activations and biases left out),
    written as a map from inputs to outputs. For linear layers with zero
    biases it is the network's own map; for tanh (f(0) = 0, f'(0) = 1) and
    zero biases it is the network's Jacobian at x = 0. Mode α maps the input
    direction v_α to the output direction u_α; with a target map U S Vᵀ
    (Saxe, McClelland & Ganguli 2014) its strength goes from about 0 to s_α
    as the network learns it. Into `<log_dir>/train`, one scalar per mode:
    `mode_strength/<name>`.

    The value at step k is the map after k updates. It is captured inside the
    compiled train step, before each update, through the model's
    `StepRecorder` (which the model must be compiled with), into a small
    buffer, so every step is logged with `steps_per_execution > 1` too; the
    map after the last update is logged when training ends.

    Args:
        log_dir: run folder; scalars go to `<log_dir>/train`.
        u: output directions, shape (outputs, modes).
        v: input directions, shape (inputs, modes).
        names: one tag name per mode (default "0", "1", ...), e.g.
            `tags.mode_name(s)` = "s=5".

    Raises:
        ValueError: an argument is invalid (the message names the value
            received); at `fit`, the model has a layer with weights that is
            not `Dense`, its kernels do not chain from len(v) inputs to
            len(u) outputs, or its optimizer is not a `StepRecorder`.
        RuntimeError: Keras runs on another backend than TensorFlow.

    Example:

    ```python
    u, _, vt = np.linalg.svd(target_map)   # target_map: outputs x inputs
    model.compile(optimizer=StepRecorder(keras.optimizers.SGD(0.01)), loss="mse")
    model.fit(x, y, epochs=50, callbacks=[
        ModeStrengthLogger("logs/run", u[:, :3], vt[:3].T, names=["a", "b", "c"])])
    ```
    """

    def __init__(self, log_dir, u, v, names=None):
        super().__init__()
        backend.require_tensorflow(type(self).__name__)
        if not log_dir:
            raise ValueError(f"`log_dir` must be a folder path, received: {log_dir!r}")
        self.u, self.v = (_directions(name, value) for name, value in (("u", u), ("v", v)))
        modes = self.u.shape[1]
        if self.v.shape[1] != modes:
            raise ValueError(f"`u` and `v` must have one column per mode, received "
                             f"u.shape={self.u.shape} and v.shape={self.v.shape}")
        names = [str(index) for index in range(modes)] if names is None else list(names)
        if len(names) != modes or len(set(names)) != modes or not all(
                isinstance(name, str) and name for name in names):
            raise ValueError(f"`names` must be {modes} distinct non-empty strings, "
                             f"received: {names!r}")
        self.names = names
        self.log_dir = os.fspath(log_dir)
        # Creates its file at the first write: nothing exists when nothing is logged.
        self._train_writer = EventWriter(os.path.join(self.log_dir, "train"))
        self._buffer = None
        self._kernels = None
        self._recorder = None
        self._next_step = 0  # the first step not written yet

    def strengths(self):
        """The modes' strengths in the model's current weights, shape (modes,)."""
        collapsed = tf.cast(tf.convert_to_tensor(self._kernels[0]), tf.float32)
        for kernel in self._kernels[1:]:
            collapsed = tf.matmul(collapsed, tf.cast(tf.convert_to_tensor(kernel), tf.float32))
        # y = x K1 K2 ... Kn, so u_αᵀ W v_α = v_αᵀ (K1 ... Kn) u_α.
        return tf.reduce_sum(self.v * tf.matmul(collapsed, self.u), axis=0)

    def on_train_begin(self, logs=None):
        model = self.model
        self._kernels = dense_kernels(model)
        inputs, outputs = self._kernels[0].shape[0], self._kernels[-1].shape[1]
        if (inputs, outputs) != (self.v.shape[0], self.u.shape[0]):
            raise ValueError(f"{model.name} maps {inputs} inputs to {outputs} outputs, but `v` "
                             f"has {self.v.shape[0]} rows and `u` {self.u.shape[0]}")
        self._recorder = step_recorder.require_recorder(model.optimizer, type(self).__name__)
        self._buffer = step_recorder.StepBuffer(
            self._recorder, max(1, int(model.steps_per_execution)), (len(self.names),),
            model.distribute_strategy, "mode_strength_buffer")
        self._recorder.add_listener(self)
        model.make_train_function(force=True)
        self._next_step = max(self._next_step, int(self._recorder.iterations.numpy()))

    def record_gradients(self, grads, variables, applied):
        """Traced before each update: the map after `iterations` updates into the buffer."""
        self._buffer.write(self.strengths())

    def on_train_batch_end(self, batch, logs=None):
        self._write_captured(int(self._recorder.iterations.numpy()))

    def _write_captured(self, step: int) -> None:
        """Writes the captured steps from `_next_step` up to `step` - 1."""
        if step <= self._next_step:
            return
        counts = range(self._next_step, step)
        for each, values in zip(counts, self._buffer.read(counts)):
            self._write(each, values)

    def _write(self, step: int, values) -> None:
        self._train_writer.write(step, scalars=[
            (tags.tag(tags.MODE_STRENGTH, name), value)
            for name, value in zip(self.names, np.asarray(values).tolist())])
        self._next_step = step + 1

    def on_train_end(self, logs=None):
        step = int(self._recorder.iterations.numpy())
        self._write_captured(step)
        if step >= self._next_step:
            self._write(step, self.strengths().numpy())
        self._recorder.remove_listener(self)
        self.model.make_train_function(force=True)  # the next fit traces the plain step
        self._train_writer.close()


def dense_kernels(model) -> list:
    """The kernels of `model`'s Dense layers in order, checked to chain as one product.

    Raises:
        ValueError: a layer with weights is not Dense, or the kernels do not chain.
    """
    kernels = []
    for layer in _layers(model):
        if isinstance(layer, keras.layers.Dense):
            kernels.append(layer.kernel)
        elif layer.weights:
            raise ValueError(f"ModeStrengthLogger needs a network of Dense layers; "
                             f"{layer.name} is a {type(layer).__name__}")
    if not kernels:
        raise ValueError(f"ModeStrengthLogger: {model.name} has no Dense layer")
    for before, after in zip(kernels, kernels[1:]):
        if before.shape[1] != after.shape[0]:
            raise ValueError(f"ModeStrengthLogger: the kernels of {model.name} do not chain "
                             f"({before.path} {tuple(before.shape)}, then {after.path} "
                             f"{tuple(after.shape)})")
    return kernels


def _layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer


def _directions(name: str, value) -> np.ndarray:
    array = np.asarray(value, dtype=np.float32)
    if array.ndim != 2 or 0 in array.shape or not np.isfinite(array).all():
        raise ValueError(f"`{name}` must be a finite 2-D array (dimensions x modes), received "
                         f"shape {array.shape}")
    return array
