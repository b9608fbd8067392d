"""Cost of our logging callbacks against plain `fit`, measured side by side.

Trains the same model (the article's default configuration) several ways,
interleaved and repeated in one process: plain `fit`; `fit` with Keras's
TensorBoard(histogram_freq=1); `fit` with our three probe loggers at their
default frequency; the same plus `BatchLossLogger`; and a raw `tf.function`
loop (one compiled step per batch). Prints the median seconds per epoch (the
first epoch, which traces the train step, excluded) and the median whole-`fit`
time (tracing included), each as a ratio to plain `fit` with the same
steps_per_execution. The mean per epoch counts every log; the median is the
typical epoch.

Run: python benchmarks/logging_overhead.py [--repeats 3] [--epochs 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import callbacks as our_callbacks  # noqa: E402
from reproduce import datasets, models  # noqa: E402
from reproduce.config import RunConfig  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of every epoch (validation included)."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def make_callbacks(variant: str, log_dir: str, probe) -> list:
    if variant == "keras_tensorboard_histograms":
        return [keras.callbacks.TensorBoard(log_dir, histogram_freq=1, write_graph=False)]
    loggers = [cls(log_dir, probe=probe) for cls in (
        our_callbacks.GradientLogger, our_callbacks.WeightLogger, our_callbacks.ActivationLogger)]
    if variant == "our_three_loggers":
        return loggers
    if variant == "our_loggers_and_batch_loss":
        return [*loggers, our_callbacks.BatchLossLogger(log_dir)]
    return []


def run_fit(config, data, variant, log_dir):
    keras.backend.clear_session()
    keras.utils.set_random_seed(config.seed)
    model = models.build_model(config, data.input_dim, data.n_classes)
    models.compile_model(model, config, data.n_classes)
    train, validation = datasets.make_pipelines(data, config.batch_size, config.seed)
    probe = datasets.make_probe(data, config.probe_size, config.seed)
    timer = EpochTimer()
    start = time.perf_counter()
    model.fit(train, validation_data=validation, epochs=config.epochs, verbose=0, shuffle=False,
              callbacks=[*make_callbacks(variant, log_dir, probe), timer])
    return timer.seconds, time.perf_counter() - start


def run_raw_loop(config, data):
    """A hand-written loop: a compiled step per batch (a loop inside one tf.function
    over the pipeline measured ~7x slower here)."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(config.seed)
    model = models.build_model(config, data.input_dim, data.n_classes)
    optimizer = models.make_optimizer(config)
    loss_fn = keras.losses.get(models.loss_name(data.n_classes))
    train, validation = datasets.make_pipelines(data, config.batch_size, config.seed)

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(loss_fn(y, model(x, training=True)))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    @tf.function
    def validation_step(x, y):
        return tf.reduce_sum(loss_fn(y, model(x, training=False)))

    seconds = []
    start = time.perf_counter()
    for _ in range(config.epochs):
        epoch_start = time.perf_counter()
        for x, y in train:
            train_step(x, y)
        sum(float(validation_step(x, y)) for x, y in validation)
        seconds.append(time.perf_counter() - epoch_start)
    return seconds, time.perf_counter() - start


VARIANTS = ("plain_fit", "keras_tensorboard_histograms", "our_three_loggers",
            "our_loggers_and_batch_loss", "raw_tf_function_loop")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--dataset", default="moons")
    parser.add_argument("--steps-per-execution", type=int, default=RunConfig().steps_per_execution)
    args = parser.parse_args()
    config = RunConfig(dataset=args.dataset, activation="relu", epochs=args.epochs,
                       steps_per_execution=args.steps_per_execution)
    data = datasets.load_dataset(config)
    per_epoch = {variant: [] for variant in VARIANTS}
    per_fit = {variant: [] for variant in VARIANTS}
    with tempfile.TemporaryDirectory() as root:
        for repeat in range(args.repeats):
            for variant in VARIANTS:
                if variant == "raw_tf_function_loop":
                    seconds, total = run_raw_loop(config, data)
                else:
                    seconds, total = run_fit(config, data, variant,
                                             os.path.join(root, f"{variant}-{repeat}"))
                per_epoch[variant] += seconds[1:]
                per_fit[variant].append(total)
                print(f"repeat {repeat + 1}/{args.repeats} {variant:30s} fit {total:6.2f}s",
                      flush=True)

    steps = len(data.x_train) // config.batch_size + 1
    print(f"\n{config.dataset}, depth {config.depth} width {config.width}, {args.epochs} epochs "
          f"of {steps} steps, steps_per_execution={config.steps_per_execution}, "
          f"{args.repeats} repeats, interleaved")
    base_epoch = statistics.median(per_epoch["plain_fit"])
    base_mean = statistics.fmean(per_epoch["plain_fit"])
    base_fit = statistics.median(per_fit["plain_fit"])
    print(f"{'variant':30s} {'median s/epoch':>14s} {'ratio':>6s} {'mean s/epoch':>12s} "
          f"{'ratio':>6s} {'median s/fit':>12s} {'ratio':>6s}")
    for variant in VARIANTS:
        epoch = statistics.median(per_epoch[variant])
        mean = statistics.fmean(per_epoch[variant])
        fit = statistics.median(per_fit[variant])
        print(f"{variant:30s} {epoch:14.4f} {epoch / base_epoch:6.2f} {mean:12.4f} "
              f"{mean / base_mean:6.2f} {fit:12.2f} {fit / base_fit:6.2f}")


if __name__ == "__main__":
    main()
