"""Generated and bundled datasets, split and standardised, plus the probe batch.

Nothing here downloads: the 2-D sets are generated from the seed, `digits` ships
with scikit-learn, and `mnist` is read only from an already cached file. `saxe` is
the regression task of Saxe, McClelland & Ganguli (2014), generated from the seed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np

from callbacks import probe
from reproduce.config import (
    FIXED_SPLITS, GENERATED_SAMPLES, INPUT_DIMS, OUTPUT_UNITS, REGRESSION_DATASETS, RunConfig,
    validation_size)
from reproduce.errors import ConfigError, DataError, DataMismatchError

MNIST_ENV = "REPRODUCE_MNIST"  # optional path to a cached mnist.npz
MNIST_DEFAULT = Path("~/.keras/datasets/mnist.npz")
SAXE_STRENGTHS = (5.0, 3.0, 2.0, 1.0, 0.5)  # singular values s_α of the `saxe` input-output map


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A train/validation split, standardised with training statistics only.

    Binary sets have `y` of shape (n, 1) in float32 (sigmoid output, binary
    cross-entropy); multi-class sets have integer `y` of shape (n,) (softmax,
    sparse categorical cross-entropy); regression sets (`n_classes` 0) have
    float32 `y` of shape (n, outputs) (linear output, mean-squared error).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    n_classes: int

    @property
    def input_dim(self) -> int:
        return self.x_train.shape[1]


def load_dataset(config: RunConfig, mnist_path: str | Path | None = None) -> Dataset:
    """Builds the split dataset that `config` describes, deterministically from its seed.

    Raises:
        DataError: the set cannot be built (too few samples, MNIST not cached).
    """
    if config.dataset in REGRESSION_DATASETS:
        return _load_saxe(config)
    x, y, n_classes = _load_raw(config, mnist_path)
    rng = np.random.default_rng(config.seed)
    try:
        n_val = validation_size(len(x), config.validation_fraction)
    except ConfigError as error:
        raise DataError(str(error)) from None
    order = rng.permutation(len(x))
    val_index, train_index = order[:n_val], order[n_val:]
    x_train, x_val = x[train_index], x[val_index]
    mean = x_train.mean(axis=0)
    scale = x_train.std(axis=0)
    scale[scale == 0] = 1.0
    if n_classes == 2:
        y = y.astype(np.float32).reshape(-1, 1)
    else:
        y = y.astype(np.int32)
    return Dataset(
        name=config.dataset,
        x_train=((x_train - mean) / scale).astype(np.float32),
        y_train=y[train_index],
        x_val=((x_val - mean) / scale).astype(np.float32),
        y_val=y[val_index],
        n_classes=n_classes,
    )


def fingerprint(dataset: Dataset) -> str:
    """The sha256 of the split: training and validation inputs and labels, shapes and types.

    Training records it in the run's marker; `load_checked` compares it with
    the data regenerated later, so a changed generator cannot silently change
    what an old run is measured on.
    """
    digest = hashlib.sha256()
    for array in (dataset.x_train, dataset.y_train, dataset.x_val, dataset.y_val):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def check_fingerprint(config: RunConfig, actual: str, expected: str | None) -> None:
    """Checks a regenerated split's `fingerprint` against the one its run recorded.

    Args:
        config: the run's configuration, for the message.
        actual: the fingerprint of the regenerated split.
        expected: the run's recorded one; None (a run trained before
            fingerprints were recorded) passes.

    Raises:
        DataMismatchError: they differ.
    """
    if expected is not None and actual != expected:
        raise DataMismatchError(
            f"the regenerated {config.dataset} split differs from the one it was trained on "
            f"(sha256 {actual[:12]}… instead of {expected[:12]}…)")


def load_checked(config: RunConfig, expected: str | None,
                 mnist_path: str | Path | None = None) -> Dataset:
    """Regenerates a run's split and checks it against the fingerprint recorded at training.

    Raises:
        DataError: the set cannot be built here.
        DataMismatchError: the regenerated split differs from the one trained on.
    """
    dataset = load_dataset(config, mnist_path)
    check_fingerprint(config, fingerprint(dataset), expected)
    return dataset


def make_probe(dataset: Dataset, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns min(size, training size) training examples chosen by `seed`."""
    return probe.make_probe(dataset.x_train, dataset.y_train, size, seed)


def make_pipelines(dataset: Dataset, batch_size: int, seed: int, passes_per_epoch: int = 1):
    """Returns (train, validation) `tf.data` pipelines: shuffled per pass, batched, prefetched.

    An epoch of the training pipeline is `passes_per_epoch` passes over the
    training split (a full-batch run then takes that many steps per epoch).

    tf.data's autotuning is off. It starts a model thread for each iterator,
    `fit` and the validation make a new iterator every epoch, and at times
    ending one waited, off the CPU, for that thread's next timed wake-up: a
    process alone on one core was then idle 37% of its time (`perf sched`),
    and a sweep kept its cores ~85% busy. The batches are the same;
    prefetching is tuned by the prefetch op itself.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False

    train = (
        tf.data.Dataset.from_tensor_slices((dataset.x_train, dataset.y_train))
        .shuffle(len(dataset.x_train), seed=seed, reshuffle_each_iteration=True))
    if passes_per_epoch > 1:
        train = train.repeat(passes_per_epoch)
    train = train.batch(batch_size).prefetch(tf.data.AUTOTUNE).with_options(options)
    validation = (
        tf.data.Dataset.from_tensor_slices((dataset.x_val, dataset.y_val))
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
        .with_options(options)
    )
    return train, validation


@dataclasses.dataclass(frozen=True)
class SaxeTask:
    """The input-output map of the `saxe` set: y = U diag(s) Vᵀ x.

    `u` (outputs × modes) and `v` (inputs × modes) have orthonormal columns;
    mode α maps the input direction v_α to the output direction u_α with
    strength s_α.
    """

    u: np.ndarray
    strengths: tuple[float, ...]
    v: np.ndarray

    @property
    def matrix(self) -> np.ndarray:
        """The map U diag(s) Vᵀ, outputs × inputs."""
        return self.u @ np.diag(self.strengths) @ self.v.T


def saxe_task(config: RunConfig) -> SaxeTask:
    """The map of `config`'s `saxe` set, drawn from its seed (as the data are)."""
    rng = np.random.default_rng([config.seed, 3])
    modes = len(SAXE_STRENGTHS)
    u = _orthogonal(rng, OUTPUT_UNITS["saxe"])[:, :modes]
    v = _orthogonal(rng, INPUT_DIMS["saxe"])[:, :modes]
    return SaxeTask(u, SAXE_STRENGTHS, v)


def _load_saxe(config: RunConfig) -> Dataset:
    """Whitened inputs: ±each row of a random orthogonal matrix, over √2.

    The training inputs x_μ then satisfy Σ_μ x_μ x_μᵀ = I, so the input-output
    correlation Σ_μ y_μ x_μᵀ is the task's map U S Vᵀ itself (Saxe et al.'s
    Σ³¹, with Σ¹¹ = I); their mean is zero, so biases that start at zero get
    no gradient in a linear network. The validation inputs are built the same
    way along another orthonormal frame. Nothing is standardised.
    """
    task = saxe_task(config)
    rng = np.random.default_rng([config.seed, 4])

    def frame():
        rows = _orthogonal(rng, INPUT_DIMS["saxe"])
        x = np.concatenate([rows, -rows]) / np.sqrt(2.0)
        return x.astype(np.float32), (x @ task.matrix.T).astype(np.float32)

    x_train, y_train = frame()
    x_val, y_val = frame()
    assert (len(x_train), len(x_val)) == FIXED_SPLITS["saxe"]
    return Dataset(config.dataset, x_train, y_train, x_val, y_val, n_classes=0)


def _orthogonal(rng, size: int) -> np.ndarray:
    """A random orthogonal matrix, uniform over the orthogonal group (QR of a Gaussian)."""
    q, r = np.linalg.qr(rng.normal(size=(size, size)))
    return q * np.sign(np.diag(r))


def _load_raw(config: RunConfig, mnist_path) -> tuple[np.ndarray, np.ndarray, int]:
    if config.dataset == "digits":
        return _subsample(*_load_digits(), config)
    if config.dataset == "mnist":
        return _subsample(*_load_mnist(mnist_path), config)
    samples = config.samples or GENERATED_SAMPLES
    rng = np.random.default_rng([config.seed, 0])
    x, y = GENERATORS[config.dataset](samples, rng)
    x = x + rng.normal(scale=config.noise, size=x.shape)
    return x.astype(np.float64), y.astype(np.int64), 2


def _subsample(x, y, n_classes, config: RunConfig):
    if config.samples is not None and config.samples < len(x):
        rng = np.random.default_rng([config.seed, 2])
        index = np.sort(rng.choice(len(x), size=config.samples, replace=False))
        x, y = x[index], y[index]
    return x, y, n_classes


def _half_labels(samples: int) -> np.ndarray:
    return (np.arange(samples) >= samples // 2).astype(np.int64)


def _moons(samples, rng):
    y = _half_labels(samples)
    angle = rng.uniform(0, np.pi, samples)
    x = np.where(
        y[:, None] == 0,
        np.stack([np.cos(angle), np.sin(angle)], axis=1),
        np.stack([1 - np.cos(angle), 0.5 - np.sin(angle)], axis=1),
    )
    return x, y


def _circles(samples, rng):
    y = _half_labels(samples)
    angle = rng.uniform(0, 2 * np.pi, samples)
    radius = np.where(y == 0, 1.0, 0.5)
    return np.stack([np.cos(angle), np.sin(angle)], axis=1) * radius[:, None], y


def _xor(samples, rng):
    x = rng.uniform(-1, 1, size=(samples, 2))
    return x, (x[:, 0] * x[:, 1] > 0).astype(np.int64)


def _spirals(samples, rng):
    y = _half_labels(samples)
    turn = np.sqrt(rng.uniform(0.05, 1, samples)) * 3 * np.pi
    angle = turn + np.pi * y
    x = np.stack([np.cos(angle), np.sin(angle)], axis=1) * (turn / (3 * np.pi))[:, None]
    return x, y


def _linear(samples, rng):
    y = _half_labels(samples)
    centers = np.where(y[:, None] == 0, -1.0, 1.0) * np.array([1.0, 0.5])
    return centers + rng.normal(scale=0.4, size=(samples, 2)), y


GENERATORS = {
    "moons": _moons,
    "circles": _circles,
    "xor": _xor,
    "spirals": _spirals,
    "linear": _linear,
}


def _load_digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data.astype(np.float64) / 16.0, digits.target.astype(np.int64), 10


def _load_mnist(path):
    path = Path(path or os.environ.get(MNIST_ENV) or MNIST_DEFAULT).expanduser()
    if not path.is_file():
        raise DataError(
            f"MNIST is not cached at {path}; nothing is downloaded at run time. "
            f"Copy mnist.npz (as keras.datasets.mnist.load_data saves it) to "
            f"{MNIST_DEFAULT} or point {MNIST_ENV} to it"
        )
    with np.load(path, allow_pickle=False) as data:
        x = np.concatenate([data["x_train"], data["x_test"]]).reshape(-1, 28 * 28)
        y = np.concatenate([data["y_train"], data["y_test"]])
    return x.astype(np.float64) / 255.0, y.astype(np.int64), 10
