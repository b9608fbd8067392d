"""The probe batch: a fixed set of examples the probe loggers compute on (numpy only).

A probe is what `fit` accepts as data: `(x, y)` or `(x, y, sample_weight)`,
each an array or a list, tuple or dict of arrays (multi-input and
multi-output models), or a `tf.data.Dataset` yielding such batches.
`read_probe` turns any of them into a `Probe` of numpy arrays and rejects
anything else with a `ValueError` naming what it received. TensorFlow is
never imported here: a dataset can only exist once the caller imported it.
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np

DEFAULT_PROBE_SIZE = 256

_EXPECTED = ("`probe` must be a pair (x, y) or a triple (x, y, sample_weight) of arrays, "
             "or lists, tuples or dicts of arrays, as `fit` accepts them, or a "
             "tf.data.Dataset yielding such batches")


@dataclasses.dataclass(frozen=True)
class Probe:
    """Probe examples: `x`, `y` and `sample_weight` as arrays or nested lists, tuples, dicts."""

    x: object
    y: object
    sample_weight: object = None

    def __len__(self) -> int:
        return len(flatten(self.x)[0][1])

    def as_tuple(self) -> tuple:
        """`(x, y)`, or `(x, y, sample_weight)` when there are sample weights."""
        if self.sample_weight is None:
            return (self.x, self.y)
        return (self.x, self.y, self.sample_weight)

    def select(self, index) -> "Probe":
        """The examples at `index` (a slice or an index array) of every array."""
        return Probe(*(map_structure(lambda array: array[index], part)
                       for part in (self.x, self.y, self.sample_weight)))


def map_structure(function, structure):
    """Applies `function` to every leaf of nested dicts, lists and tuples; None stays None."""
    if structure is None:
        return None
    if isinstance(structure, dict):
        return {key: map_structure(function, value) for key, value in structure.items()}
    if isinstance(structure, (list, tuple)):
        return type(structure)(map_structure(function, value) for value in structure)
    return function(structure)


def flatten(structure, name="") -> list[tuple[str, object]]:
    """Returns `(name, leaf)` pairs, e.g. `("x['tokens']", array)`, in the structure's order."""
    if structure is None:
        return []
    if isinstance(structure, dict):
        return [pair for key, value in structure.items()
                for pair in flatten(value, f"{name}[{key!r}]")]
    if isinstance(structure, (list, tuple)):
        return [pair for index, value in enumerate(structure)
                for pair in flatten(value, f"{name}[{index}]")]
    return [(name, structure)]


def make_probe(x, y, size: int = DEFAULT_PROBE_SIZE, seed: int = 0):
    """Returns min(size, len(x)) examples of (x, y) chosen by `seed`, in their original order.

    `x` and `y` are arrays, or lists, tuples or dicts of arrays with one
    example per row; the same examples are taken from every array.
    """
    probe = _subsample(Probe(map_structure(np.asarray, x), map_structure(np.asarray, y)),
                       size, seed)
    return probe.x, probe.y


def read_probe(probe, size: int = DEFAULT_PROBE_SIZE, seed: int = 0) -> Probe:
    """Returns the probe examples of `probe`, validated.

    Args:
        probe: `(x, y)` or `(x, y, sample_weight)` as `fit` accepts them, or a
            `tf.data.Dataset` yielding such batches.
        size: the most examples kept. Of arrays, `size` examples are chosen
            with `seed` (in their original order); of a dataset, the first
            `size` examples it yields are taken, across as many batches as
            needed (the dataset is iterated once, here).
        seed: chooses the examples kept from arrays.

    Returns:
        A `Probe` of numpy arrays.

    Raises:
        ValueError: `probe` is none of the above, holds no example, an `x`
            array has fewer than 2 dimensions, or its arrays hold different
            numbers of examples.
    """
    if _is_dataset(probe):
        return _validated(_take_from_dataset(probe, size))
    if not isinstance(probe, (tuple, list)) or len(probe) not in (2, 3):
        raise ValueError(f"{_EXPECTED}, received: {describe(probe)}")
    x, y, sample_weight = (*probe, None)[:3]
    if y is None:
        raise ValueError(f"{_EXPECTED}; `y` is needed for the loss, received y=None")
    parts = (map_structure(np.asarray, part) for part in (x, y, sample_weight))
    return _subsample(_validated(Probe(*parts)), size, seed)


def describe(value) -> str:
    """A short description of `value` for error messages: its type, and shape or keys."""
    if isinstance(value, dict):
        return f"dict with keys {list(value)}"
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__} of {len(value)} items"
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"{type(value).__name__} of shape {tuple(shape)}"
    return type(value).__name__


def _is_dataset(value) -> bool:
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(value, tf.data.Dataset)


def _take_from_dataset(dataset, size: int) -> Probe:
    batches, count = [], 0
    for element in dataset.as_numpy_iterator():
        if not isinstance(element, tuple) or len(element) not in (2, 3):
            raise ValueError(
                "`probe` dataset must yield batches (x, y) or (x, y, sample_weight), "
                f"received an element: {describe(element)}")
        batch = Probe(*element)
        batches.append(batch)
        count += len(_validated(batch))
        if count >= size:
            break
    if not batches:
        raise ValueError("`probe` dataset yielded no example")
    # Concatenate leaf by leaf, keeping the structure of the first batch.
    leaves = [[leaf for _, leaf in flatten(batch.as_tuple())] for batch in batches]
    joined = iter([np.concatenate(parts)[:size] for parts in zip(*leaves)])
    return Probe(*map_structure(lambda _: next(joined), batches[0].as_tuple()))


def _validated(probe: Probe) -> Probe:
    x_leaves = flatten(probe.x, "x")
    if not x_leaves:
        raise ValueError(f"{_EXPECTED}, received x: {describe(probe.x)}")
    for name, array in x_leaves:
        if array.dtype == object or array.ndim < 2 or len(array) == 0:
            raise ValueError(
                f"`probe` {name} must have shape (examples, features...) with at least one "
                f"example, received {describe(array)}"
                + (f" of dtype {array.dtype}" if array.dtype == object else ""))
    leaves = [*x_leaves, *flatten(probe.y, "y"), *flatten(probe.sample_weight, "sample_weight")]
    first_name, first = leaves[0]
    for name, array in leaves[1:]:
        if array.ndim < 1 or len(array) != len(first):
            raise ValueError(
                "`probe` x and y must hold the same number of examples, received "
                f"{first_name} shape {first.shape} and {name} shape {array.shape}")
    return probe


def _subsample(probe: Probe, size: int, seed: int) -> Probe:
    count = len(probe)
    if count <= size:
        return probe
    return probe.select(np.sort(np.random.default_rng(seed).choice(count, size, replace=False)))
