"""Cost of our logging callbacks against plain `fit`, measured side by side.

Two workloads, each trained several ways, interleaved and repeated in one
process, at the same steps_per_execution:

- `mlp`: the article's default configuration (moons, depth 4, width 32):
  plain `fit`; `fit` with Keras's TensorBoard(histogram_freq=1); with our
  three probe loggers at their default frequency; the same plus
  `BatchLossLogger`; `GradientLogger` alone (probe gradients) and
  `AppliedGradientLogger` alone (the applied gradients, from inside the
  train step), both at their default frequency; and a raw `tf.function`
  loop (one compiled step per batch).
- `convnet`: the keras-io "Simple MNIST convnet" on digits, trained as
  `examples/convnet_digits.py` trains it: plain `fit`; with Keras's
  TensorBoard(histogram_freq=1); with our four callbacks at their default
  frequency (`make_loggers`); `GradientLogger` alone and
  `AppliedGradientLogger` alone, at their default frequency.
- `convnet_mnist`: the same three, on keras-io's model as published
  (28x28 inputs) and at its scale: MNIST's 60,000 training images if
  mnist.npz is cached, otherwise a stand-in of the same shapes (the digits
  resized to 28x28 and repeated); `--mnist-epochs` of keras-io's 15.

Our loggers log about twenty times per run whatever its length, and
tracing their functions for a new model is a fixed cost, so their share
falls as runs grow: the 8x8 digits run is a few seconds long.

Prints, as ratios to plain `fit`, the median seconds per epoch (the first
epoch, which traces the train step, excluded), the mean per epoch (which
counts every log), and the median whole-`fit` time (tracing included), in
wall and in CPU seconds (the latter less sensitive to other processes).

Run: python benchmarks/logging_overhead.py [--workloads mlp convnet convnet_mnist] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import callbacks as our_callbacks  # noqa: E402
from reproduce import datasets  # noqa: E402
from reproduce.config import RunConfig  # noqa: E402
from reproduce.training import models  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import convnet_digits  # noqa: E402


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
    if variant == "our_four_loggers":
        return our_callbacks.make_loggers(log_dir, probe)
    if variant == "our_probe_gradients":
        return [our_callbacks.GradientLogger(log_dir, probe=probe)]
    if variant == "our_applied_gradients":
        return [our_callbacks.AppliedGradientLogger(log_dir)]
    loggers = [cls(log_dir, probe=probe) for cls in (
        our_callbacks.GradientLogger, our_callbacks.WeightLogger, our_callbacks.ActivationLogger)]
    if variant == "our_three_loggers":
        return loggers
    if variant == "our_loggers_and_batch_loss":
        return [*loggers, our_callbacks.BatchLossLogger(log_dir)]
    return []


def timed_fit(model, variant, log_dir, probe, **fit_options):
    """Returns the seconds of each epoch, and the wall and CPU seconds of the whole `fit`."""
    timer = EpochTimer()
    start, cpu_start = time.perf_counter(), time.process_time()
    model.fit(verbose=0, callbacks=[*make_callbacks(variant, log_dir, probe), timer],
              **fit_options)
    return timer.seconds, time.perf_counter() - start, time.process_time() - cpu_start


def mlp_fit(config, data, variant, log_dir):
    keras.backend.clear_session()
    keras.utils.set_random_seed(config.seed)
    if variant == "raw_tf_function_loop":
        return raw_loop(config, data)
    model = models.build_model(config, data.input_dim, data.n_classes)
    models.compile_model(model, config, data.n_classes)
    train, validation = datasets.make_pipelines(data, config.batch_size, config.seed)
    probe = datasets.make_probe(data, config.probe_size, config.seed)
    return timed_fit(model, variant, log_dir, probe, x=train, validation_data=validation,
                     epochs=config.epochs, shuffle=False)


def raw_loop(config, data):
    """A hand-written loop: a compiled step per batch (a loop inside one tf.function
    over the pipeline measured ~7x slower here)."""
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
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(config.epochs):
        epoch_start = time.perf_counter()
        for x, y in train:
            train_step(x, y)
        sum(float(validation_step(x, y)) for x, y in validation)
        seconds.append(time.perf_counter() - epoch_start)
    return seconds, time.perf_counter() - start, time.process_time() - cpu_start


def convnet_fit(build_model, epochs, steps_per_execution, data, variant, log_dir):
    """A convnet trained as keras-io trains it (batch 128, 10% validation)."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = build_model()
    # Our loggers with the StepRecorder they need (its cost counted), the others as keras-io.
    optimizer = our_callbacks.StepRecorder("adam") if variant.startswith("our_") else "adam"
    model.compile(loss="categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"],
                  steps_per_execution=steps_per_execution)
    x, y = data
    return timed_fit(model, variant, log_dir, (x, y), x=x, y=y, batch_size=128, epochs=epochs,
                     validation_split=0.1)


def keras_io_convnet() -> keras.Model:
    """keras-io's "Simple MNIST convnet" as published: 28x28 inputs, no padding."""
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(10, activation="softmax"),
    ])


MNIST_TRAINING_IMAGES = 60_000


def load_mnist_shaped():
    """(x, y, source): MNIST's training set if cached, else digits of the same shapes and count."""
    path = Path(os.environ.get(datasets.MNIST_ENV) or datasets.MNIST_DEFAULT).expanduser()
    if path.is_file():
        with np.load(path, allow_pickle=False) as data:
            x, labels = data["x_train"][..., None] / 255.0, data["y_train"]
        return x.astype("float32"), keras.utils.to_categorical(labels, 10), f"MNIST ({path})"
    x, y = convnet_digits.load_data()
    x = tf.image.resize(x, (28, 28)).numpy()
    repeats = -(-MNIST_TRAINING_IMAGES // len(x))
    x = np.tile(x, (repeats, 1, 1, 1))[:MNIST_TRAINING_IMAGES]
    y = np.tile(y, (repeats, 1))[:MNIST_TRAINING_IMAGES]
    return x, y, "the digits resized to 28x28 and repeated to 60,000 (MNIST is not cached)"


MLP_VARIANTS = ("plain_fit", "keras_tensorboard_histograms", "our_three_loggers",
                "our_loggers_and_batch_loss", "our_probe_gradients", "our_applied_gradients",
                "raw_tf_function_loop")
CONVNET_VARIANTS = ("plain_fit", "keras_tensorboard_histograms", "our_four_loggers",
                    "our_probe_gradients", "our_applied_gradients")


def measure(fit, variants, repeats, root, name):
    """Runs every variant `repeats` times, interleaved.

    Returns seconds per epoch, and (wall, CPU) seconds per fit, of each variant.
    """
    per_epoch = {variant: [] for variant in variants}
    per_fit = {variant: [] for variant in variants}
    for repeat in range(repeats):
        for variant in variants:
            seconds, total, cpu = fit(variant, os.path.join(root, f"{name}-{variant}-{repeat}"))
            per_epoch[variant] += seconds[1:]
            per_fit[variant].append((total, cpu))
            print(f"{name} repeat {repeat + 1}/{repeats} {variant:30s} fit {total:6.2f}s "
                  f"(CPU {cpu:6.2f}s)", flush=True)
    return per_epoch, per_fit


def print_ratios(title, per_epoch, per_fit):
    print(f"\n{title}")
    columns = {
        "median s/epoch": lambda variant: statistics.median(per_epoch[variant]),
        "mean s/epoch": lambda variant: statistics.fmean(per_epoch[variant]),
        "median s/fit": lambda variant: statistics.median(wall for wall, _ in per_fit[variant]),
        "CPU s/fit": lambda variant: statistics.median(cpu for _, cpu in per_fit[variant]),
    }
    print(f"{'variant':30s}" + "".join(f" {name:>14s} {'ratio':>6s}" for name in columns))
    for variant in per_epoch:
        print(f"{variant:30s}" + "".join(
            f" {value(variant):14.4f} {value(variant) / value('plain_fit'):6.2f}"
            for value in columns.values()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", choices=("mlp", "convnet", "convnet_mnist"),
                        default=["mlp", "convnet"])
    parser.add_argument("--variants", nargs="+", default=None,
                        help="only these variants (plain_fit is always measured)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30, help="MLP epochs")
    parser.add_argument("--dataset", default="moons", help="MLP dataset")
    parser.add_argument("--steps-per-execution", type=int, default=RunConfig().steps_per_execution,
                        help="MLP steps per execution")
    parser.add_argument("--convnet-epochs", type=int, default=15, help="as keras-io's example")
    parser.add_argument("--convnet-steps-per-execution", type=int, default=1,
                        help="as keras-io's example")
    parser.add_argument("--mnist-epochs", type=int, default=2,
                        help="epochs of convnet_mnist (keras-io trains 15)")
    args = parser.parse_args()
    mlp_variants, convnet_variants = (
        variants if args.variants is None else
        ("plain_fit", *[variant for variant in variants if variant in args.variants
                        and variant != "plain_fit"])
        for variants in (MLP_VARIANTS, CONVNET_VARIANTS))
    results = []
    with tempfile.TemporaryDirectory() as root:
        if "mlp" in args.workloads:
            config = RunConfig(dataset=args.dataset, activation="relu", epochs=args.epochs,
                               steps_per_execution=args.steps_per_execution)
            data = datasets.load_dataset(config)
            steps = len(data.x_train) // config.batch_size + 1
            title = (f"mlp: {config.dataset}, depth {config.depth} width {config.width}, "
                     f"{args.epochs} epochs of {steps} steps, steps_per_execution="
                     f"{config.steps_per_execution}, {args.repeats} repeats, interleaved")
            results.append((title, *measure(
                lambda variant, log_dir: mlp_fit(config, data, variant, log_dir),
                mlp_variants, args.repeats, root, "mlp")))
        convnets = {
            "convnet": lambda: (*convnet_digits.load_data(), "digits", convnet_digits.build_model,
                                args.convnet_epochs),
            "convnet_mnist": lambda: (*load_mnist_shaped(), keras_io_convnet, args.mnist_epochs),
        }
        for name in [name for name in convnets if name in args.workloads]:
            x, y, source, build_model, epochs = convnets[name]()
            steps = -(-int(len(x) * 0.9) // 128)
            title = (f"{name}: keras-io's on {source}, {epochs} epochs of {steps} steps "
                     f"(batch 128), steps_per_execution={args.convnet_steps_per_execution}, "
                     f"probe 256 examples, {args.repeats} repeats, interleaved")
            results.append((title, *measure(
                lambda variant, log_dir: convnet_fit(
                    build_model, epochs, args.convnet_steps_per_execution, (x, y), variant,
                    log_dir),
                convnet_variants, args.repeats, root, name)))
    for title, per_epoch, per_fit in results:
        print_ratios(title, per_epoch, per_fit)


if __name__ == "__main__":
    main()
