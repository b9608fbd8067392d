"""The probe batch: a fixed, seeded subset of examples (numpy only, no TensorFlow)."""

from __future__ import annotations

import numpy as np

DEFAULT_PROBE_SIZE = 256


def make_probe(x, y, size: int = DEFAULT_PROBE_SIZE, seed: int = 0):
    """Returns min(size, len(x)) examples of (x, y) chosen by `seed`, in their original order."""
    x, y = np.asarray(x), np.asarray(y)
    if len(x) <= size:
        return x, y
    index = np.sort(np.random.default_rng(seed).choice(len(x), size=size, replace=False))
    return x[index], y[index]
