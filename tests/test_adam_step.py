import keras
import numpy as np
import pytest
import tensorflow as tf

from reproduce import adam_step


def _train(optimizer, share, mixed=False):
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    try:
        inputs = keras.Input([3])
        hidden = keras.layers.Dense(8, activation="tanh")(inputs)
        hidden = keras.layers.Dense(8, activation="relu", use_bias=False)(hidden)
        outputs = keras.layers.Dense(2, activation="softmax", dtype="float32")(hidden)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], steps_per_execution=3)
        if share:
            assert adam_step.share_step_scalars(model.optimizer)
        traces = []
        train_step = model.train_step
        model.train_step = lambda batch: (traces.append(batch), train_step(batch))[1]
        rng = np.random.default_rng(0)
        x = rng.normal(size=(70, 3)).astype("float32")
        y = (x[:, 0] * x[:, 1] > 0).astype("int32")
        history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, shuffle=False)
        graph = tf.function(train_step).get_concrete_function(traces[0]).graph.as_graph_def()
        ops = len(graph.node) + sum(len(f.node_def) for f in graph.library.function)
        return (history.history, [v.numpy() for v in model.weights],
                [v.numpy() for v in model.optimizer.variables], ops)
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("make_optimizer, mixed", [
    (lambda: keras.optimizers.Adam(0.01), False),
    (lambda: keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(0.02, 4, 0.5),
                                   beta_1=0.8, epsilon=1e-4, amsgrad=True), False),
    (lambda: keras.optimizers.Adam(0.01), True),  # inside a LossScaleOptimizer
])
def test_shared_scalars_give_keras_adam_values_bit_for_bit_with_fewer_ops(make_optimizer, mixed):
    history, weights, state, ops = _train(make_optimizer(), share=False, mixed=mixed)
    shared_history, shared_weights, shared_state, shared_ops = _train(
        make_optimizer(), share=True, mixed=mixed)
    assert shared_history == history
    for shared, plain in zip(shared_weights + shared_state, weights + state, strict=True):
        np.testing.assert_array_equal(shared, plain)
    assert shared_ops < ops - 8 * 2  # two fewer variables' worth of scalar ops at least


def test_other_optimizers_and_strategies_are_left_alone():
    assert not adam_step.share_step_scalars(keras.optimizers.SGD(0.1))
    assert not adam_step.share_step_scalars(keras.optimizers.AdamW(0.1))
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        assert not adam_step.share_step_scalars(keras.optimizers.Adam(0.1))
