"""The keras-io "Simple MNIST convnet" on scikit-learn's 8x8 digits, logged by our four callbacks.

Run: python examples/convnet_digits.py --logdir logs/examples/convnet_digits
Then: tensorboard --logdir logs/examples/convnet_digits

The model is keras-io's (Conv2D relu, max pooling, Conv2D relu, max pooling,
Flatten, Dropout, Dense softmax, one-hot labels), trained as there (batch
128, 15 epochs, 10% validation); the convolutions pad ('same') so that the
8x8 digits leave something to pool. Takes about 25 s on 2 CPU cores (TensorFlow's
start-up included); reaches about 90% validation accuracy.
"""

from __future__ import annotations

import argparse

import keras
from sklearn.datasets import load_digits

from callbacks import StepRecorder, make_loggers


def load_data(samples: int | None = None):
    """Returns digits as images (n, 8, 8, 1) in [0, 1] and one-hot labels (n, 10)."""
    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None][:samples]
    y = keras.utils.to_categorical(digits.target, 10)[:samples]
    return x, y


def build_model() -> keras.Model:
    return keras.Sequential([
        keras.Input(shape=(8, 8, 1)),
        keras.layers.Conv2D(32, kernel_size=(3, 3), padding="same", activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Conv2D(64, kernel_size=(3, 3), padding="same", activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(10, activation="softmax"),
    ], name="convnet")


def train(logdir: str, epochs: int = 15, batch_size: int = 128, samples: int | None = None,
          steps_per_execution: int = 1) -> keras.Model:
    """Trains the convnet with Keras's TensorBoard callback and ours, all writing to `logdir`."""
    keras.utils.set_random_seed(0)
    x, y = load_data(samples)
    model = build_model()
    optimizer = keras.optimizers.Adam()
    if keras.mixed_precision.global_policy().name == "mixed_float16":
        # The loss scaling inside the StepRecorder, so that BatchLossLogger sees the loss.
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(loss="categorical_crossentropy", optimizer=StepRecorder(optimizer),
                  auto_scale_loss=False, metrics=["accuracy"],
                  steps_per_execution=steps_per_execution)
    probe = (x, y)  # 256 examples chosen from these
    model.fit(x, y, batch_size=batch_size, epochs=epochs, validation_split=0.1, verbose=2,
              # BatchLossLogger, GradientLogger, WeightLogger, ActivationLogger:
              callbacks=[keras.callbacks.TensorBoard(logdir), *make_loggers(logdir, probe)])
    return model


def main(argv=None) -> keras.Model:
    """Trains as the command line says, prints the command that opens the run, returns the model."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", default="logs/examples/convnet_digits")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--samples", type=int, default=None, help="use only the first N digits")
    args = parser.parse_args(argv)
    model = train(args.logdir, epochs=args.epochs, samples=args.samples)
    print(f"tensorboard --logdir {args.logdir}")
    return model


if __name__ == "__main__":
    main()
