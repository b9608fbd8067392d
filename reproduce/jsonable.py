"""Strict JSON out of measured values: the one conversion `report.json` and `compare --json` use."""

from __future__ import annotations

import math

import numpy as np


def finite(value):
    """A JSON-ready copy: numpy scalars to Python, tuples to lists, non-finite floats to None.

    `json.dumps` would write NaN and Infinity, which strict JSON parsers reject.

    Example:
        >>> finite({"a": (np.float32(1.5), float("nan"))})
        {'a': [1.5, None]}
    """
    if isinstance(value, dict):
        return {str(key): finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value
