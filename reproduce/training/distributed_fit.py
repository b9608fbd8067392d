"""`fit` for distribution strategies, where Keras 3's own `fit` fails.

With TensorFlow 2.21 / Keras 3.15, `Model.fit` fails under
`MultiWorkerMirroredStrategy` (its symbolic build reduces a distributed data
batch eagerly: "Attempt to convert a value (PerReplica...)", keras#20585),
and under `MirroredStrategy` with more than one replica once
`steps_per_execution > 1` (its multi-step loop asks the distributed iterator
for an optional element). This loop keeps `fit`'s contract instead: Keras's
own `train_step` and `test_step` run through `strategy.run`,
`steps_per_execution` steps per compiled call, and callbacks get the same
calls, step numbers and logs as in `fit` (validation included), so the
run folder, summaries and callbacks are those of `fit`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from reproduce.training import models


def fit(model: keras.Model, train_data: tf.data.Dataset, validation_data: tf.data.Dataset,
        epochs: int, callbacks: list, verbose: int | str = 0) -> keras.callbacks.History:
    """Trains `model`, compiled in its strategy's scope, like `model.fit`.

    Args:
        model: a compiled model whose variables live in its distribution strategy.
        train_data, validation_data: finite datasets of global batches.
        epochs: passes over `train_data`.
        callbacks: Keras callbacks, called as `fit` calls them.
        verbose: as in `fit`: 0 silent, 1 (or "auto") a progress bar, 2 a line per epoch.

    Returns:
        The `History` callback, as `fit` returns it.
    """
    strategy = model.distribute_strategy
    models.build_state(model, train_data.element_spec)
    steps = int(train_data.cardinality().numpy())
    validation_steps = int(validation_data.cardinality().numpy())
    callback_list = keras.callbacks.CallbackList(
        callbacks, add_history=True, add_progbar=verbose != 0,
        verbose=1 if verbose == "auto" else verbose,
        epochs=epochs, steps=steps, model=model)
    execution = max(1, int(model.steps_per_execution))
    train_function = _multi_step(strategy, model.train_step, model)
    test_function = _multi_step(strategy, model.test_step, model)
    distributed_train = strategy.experimental_distribute_dataset(_sharded(train_data))
    distributed_validation = strategy.experimental_distribute_dataset(_sharded(validation_data))

    model.stop_training = False
    callback_list.on_train_begin()
    training_logs = {}
    for epoch in range(epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        epoch_logs = _run_steps(
            train_function, distributed_train, steps, execution,
            callback_list.on_train_batch_begin, callback_list.on_train_batch_end,
            stop=lambda: model.stop_training)
        if not model.stop_training:
            # Keras's fit opens one more iterator after a full epoch and leaves it unused;
            # each opening draws a shuffle order, so this keeps the same batches as fit.
            iter(distributed_train)
        validation_logs = _evaluate(model, callback_list, test_function,
                                    distributed_validation, validation_steps, execution)
        epoch_logs.update({"val_" + name: value for name, value in validation_logs.items()})
        callback_list.on_epoch_end(epoch, epoch_logs)
        training_logs = epoch_logs
        if model.stop_training:
            break
    callback_list.on_train_end(logs=training_logs)
    return model.history


def _evaluate(model, callback_list, test_function, data, steps: int, execution: int) -> dict:
    model.reset_metrics()
    callback_list.on_test_begin()
    logs = _run_steps(test_function, data, steps, execution, callback_list.on_test_batch_begin,
                      callback_list.on_test_batch_end, stop=lambda: False)
    callback_list.on_test_end(logs)
    return logs


def _run_steps(function, data, steps: int, execution: int, on_begin, on_end, stop) -> dict:
    """One pass over `data`, `execution` steps per call; returns the last logs."""
    logs = {}
    iterator = iter(data)
    for begin in range(0, steps, execution):
        count = min(execution, steps - begin)
        on_begin(begin)
        logs = {name: float(value)
                for name, value in function(iterator, tf.constant(count)).items()}
        on_end(begin + execution - 1, logs)  # as `fit` numbers a partial last call
        if stop():
            break
    return logs


def _multi_step(strategy, step, model):
    """Returns a compiled call running `step` on `count` batches; returns the metrics.

    As in `fit`, XLA compiles the step alone: iterators cannot be compiled.
    """
    if model.jit_compile:
        step = tf.function(step, jit_compile=True, reduce_retracing=True)

    def run(iterator, count):
        for _ in tf.range(count):
            strategy.run(step, args=(next(iterator),))
        return model.get_metrics_result()

    return tf.function(run, reduce_retracing=True)


def _sharded(data: tf.data.Dataset) -> tf.data.Dataset:
    # In-memory data have no files to shard by, so workers split each global batch.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    return data.with_options(options)
