"""A GAN on 2-D points with keras-io's DCGAN `train_step`, logged by our callbacks.

Run: python examples/gan_points.py --logdir logs/examples/gan_points
Then: tensorboard --logdir logs/examples/gan_points

The model is shaped like keras-io's "DCGAN to generate face images": a
`keras.Model` subclass holding a generator and a discriminator, whose
`compile` takes two optimizers and a loss and whose `train_step` computes
both losses under `GradientTape`s and calls each optimizer's
`apply_gradients`; `compile()` itself gets no loss. Here both networks
are small MLPs and the data are generated: points on a ring of eight
Gaussians. Logged into `--logdir`:

- `AppliedGradientLogger`: the gradients each optimizer applies, by
  network (`gradients/generator/...`, `gradients/discriminator/...`,
  `gradient_norm/<network>/global`),
- `ActivationLogger` with a `loss_fn`: the hidden layers of both networks
  on a fixed probe (real points and latent vectors), with the
  discriminator's loss back-propagated through them,
- `WeightLogger`, and Keras's `TensorBoard` for `d_loss` and `g_loss`.

Takes about 20 s on 2 CPU cores (start-up included).
"""

from __future__ import annotations

import argparse

import keras
import numpy as np
import tensorflow as tf

from callbacks import ActivationLogger, AppliedGradientLogger, StepRecorder, WeightLogger

LATENT_DIM = 4


def make_points(samples: int = 2048, seed: int = 0) -> np.ndarray:
    """Points on a ring of eight Gaussians of radius 2, shape (samples, 2)."""
    rng = np.random.default_rng(seed)
    angles = rng.integers(0, 8, samples) * (2 * np.pi / 8)
    centres = 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return (centres + 0.1 * rng.normal(size=(samples, 2))).astype("float32")


class GAN(keras.Model):
    """keras-io's DCGAN model, with MLPs for 2-D points."""

    def __init__(self, latent_dim: int = LATENT_DIM, width: int = 32, seed: int = 1337):
        super().__init__(name="gan")
        self.latent_dim = latent_dim
        self.generator = keras.Sequential([
            keras.Input((latent_dim,)),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(2),
        ], name="generator")
        self.discriminator = keras.Sequential([
            keras.Input((2,)),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(1),
        ], name="discriminator")
        self.seed_generator = keras.random.SeedGenerator(seed)

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker]

    def train_step(self, real_points):
        batch_size = tf.shape(real_points)[0]
        # The discriminator learns to call generated points 1 and real ones 0.
        latent = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        combined = tf.concat([self.generator(latent), real_points], axis=0)
        labels = tf.concat([tf.ones((batch_size, 1)), tf.zeros((batch_size, 1))], axis=0)
        with tf.GradientTape() as tape:
            d_loss = self.loss_fn(labels, self.discriminator(combined))
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
        # The generator learns to make the discriminator call its points real.
        latent = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            g_loss = self.loss_fn(tf.zeros((batch_size, 1)),
                                  self.discriminator(self.generator(latent)))
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {"d_loss": self.d_loss_tracker.result(), "g_loss": self.g_loss_tracker.result()}


def discriminator_loss(model, x, y):
    """The probe's loss for the probe loggers: the discriminator's, on real points `x` and the
    points generated from latent vectors `y`, in one call of each network (a layer called
    twice in one pass is not logged)."""
    scores = model.discriminator(tf.concat([model.generator(y), x], axis=0))
    labels = tf.concat([tf.ones((tf.shape(y)[0], 1)), tf.zeros((tf.shape(x)[0], 1))], axis=0)
    return model.loss_fn(labels, scores)


def build_gan(learning_rate: float = 1e-3) -> GAN:
    gan = GAN()
    # StepRecorder: through it AppliedGradientLogger sees the gradients each one applies.
    gan.compile(d_optimizer=StepRecorder(keras.optimizers.Adam(learning_rate, beta_1=0.5)),
                g_optimizer=StepRecorder(keras.optimizers.Adam(learning_rate, beta_1=0.5)),
                loss_fn=keras.losses.BinaryCrossentropy(from_logits=True))
    return gan


def train(logdir: str, epochs: int = 30, samples: int = 2048, batch_size: int = 64,
          every_n_steps: int | None = None) -> GAN:
    """Trains the GAN with our loggers and Keras's TensorBoard callback, all writing to `logdir`."""
    keras.utils.set_random_seed(0)
    points = make_points(samples)
    latent = np.random.default_rng(1).normal(size=(256, LATENT_DIM)).astype("float32")
    probe = (points[:256], latent)  # real points, and the latent vectors of generated ones
    gan = build_gan()
    gan.fit(points, batch_size=batch_size, epochs=epochs, verbose=2, callbacks=[
        keras.callbacks.TensorBoard(logdir),
        AppliedGradientLogger(logdir, every_n_steps=every_n_steps),
        ActivationLogger(logdir, probe, every_n_steps=every_n_steps,
                         loss_fn=discriminator_loss),
        WeightLogger(logdir, probe, every_n_steps=every_n_steps),
    ])
    return gan


def main(argv=None) -> GAN:
    """Trains as the command line says, prints the command that opens the run, returns the GAN."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", default="logs/examples/gan_points")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--samples", type=int, default=2048)
    args = parser.parse_args(argv)
    gan = train(args.logdir, epochs=args.epochs, samples=args.samples)
    print(f"tensorboard --logdir {args.logdir}")
    return gan


if __name__ == "__main__":
    main()
