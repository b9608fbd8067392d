"""A run folder's files, written and read back: config, probe batch, weights, model, history.

Each reader raises `RunNotFoundError` (or `ConfigError`) naming the file that is
missing or damaged. Models are Keras's own `.keras` archives, loaded in safe mode.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from reproduce.config import RunConfig
from reproduce.errors import ConfigError, RunNotFoundError
from reproduce.runs.folders import (
    CONFIG_FILE, HISTORY_FILE, INITIAL_WEIGHTS_FILE, MODEL_FILE, PROBE_FILE)
from reproduce.runs.marker import has_type


def save_config(config: RunConfig, path: str | Path) -> None:
    """Writes `config` as the run's `config.json`."""
    (Path(path) / CONFIG_FILE).write_text(config.to_json())


def load_config(path: str | Path) -> RunConfig:
    """Reads the `config.json` of the run in `path`.

    Raises:
        ConfigError: the file is unreadable or not a valid config; the message names it.
    """
    config_file = Path(path) / CONFIG_FILE
    try:
        return RunConfig.load(config_file)
    except (OSError, ValueError) as error:  # ConfigError is a ValueError, as is bad UTF-8
        raise ConfigError(f"unreadable {config_file}: {error}") from None


def save_probe(x, y, path: str | Path) -> None:
    """Writes the run's probe batch (`x`, `y`)."""
    import numpy as np

    np.savez(Path(path) / PROBE_FILE, x=x, y=y)


def load_probe(path: str | Path):
    """The probe batch (x, y) of the run in `path`.

    Raises:
        RunNotFoundError: the probe file is missing or damaged; the message names it.
    """
    import numpy as np

    probe_file = Path(path) / PROBE_FILE
    try:
        with np.load(probe_file, allow_pickle=False) as stored:
            return stored["x"], stored["y"]
    except Exception as error:  # noqa: BLE001 - a damaged archive raises many kinds of error
        raise RunNotFoundError(
            f"unreadable {probe_file}: {type(error).__name__}: {error}") from None


def save_model(model, path: str | Path) -> None:
    """Writes `model` (Keras's `.keras` archive) as the final model of the run in `path`."""
    model.save(Path(path) / MODEL_FILE)


def save_initial_weights(model, path: str | Path) -> None:
    """Writes `model`'s weights as the run's weights at step 0 (`INITIAL_WEIGHTS_FILE`)."""
    model.save_weights(Path(path) / INITIAL_WEIGHTS_FILE)


def load_model(path: str | Path, initial: bool = False):
    """Loads the final model of the run in `path`, uncompiled, in Keras's safe mode.

    Args:
        path: the run folder.
        initial: load the weights at step 0 (`INITIAL_WEIGHTS_FILE`) into it instead.

    Raises:
        RunNotFoundError: the model or weights file is missing or does not load; the
            message names it.
    """
    import keras

    model_file = Path(path) / MODEL_FILE
    try:
        model = keras.saving.load_model(model_file, compile=False, safe_mode=True)
    except Exception as error:  # noqa: BLE001 - a damaged file raises many kinds of error
        if not model_file.is_file():
            reason = "missing"
        elif not zipfile.is_zipfile(model_file):
            reason = "not a .keras zip archive (truncated or overwritten?)"
        else:
            reason = f"{type(error).__name__}: {error}"
        raise RunNotFoundError(f"unreadable {model_file}: {reason}") from None
    if initial:
        load_initial_weights(model, path)
    return model


def load_initial_weights(model, path: str | Path) -> None:
    """Sets `model` (the run's network, e.g. from `load_model`) to its weights at step 0.

    Raises:
        RunNotFoundError: the weights file is missing or does not load into `model`.
    """
    weights_file = Path(path) / INITIAL_WEIGHTS_FILE
    if not weights_file.is_file():
        raise RunNotFoundError(f"no initial weights in {path} ({INITIAL_WEIGHTS_FILE} is "
                               f"written by training since the data fingerprint was added)")
    try:
        model.load_weights(weights_file)
    except Exception as error:  # noqa: BLE001 - a damaged file raises many kinds of error
        raise RunNotFoundError(
            f"unreadable {weights_file}: {type(error).__name__}: {error}") from None


def save_history(history: dict[str, list[float]], path: str | Path) -> None:
    """Writes Keras's `History.history` (metric -> one value per epoch) as the run's history."""
    (Path(path) / HISTORY_FILE).write_text(json.dumps(history, indent=2) + "\n")


def load_history(path: str | Path) -> dict[str, list[float]]:
    """Keras's `History.history` of the run in `path`: metric -> one value per epoch.

    A missing file gives an empty dict.

    Raises:
        RunNotFoundError: the file is not a JSON object of lists of numbers; the message
            names it.
    """
    history_file = Path(path) / HISTORY_FILE
    try:
        history = json.loads(history_file.read_text())
        if not isinstance(history, dict):
            raise ValueError("not a JSON object")
        for name, values in history.items():
            if not isinstance(values, list) or not all(has_type(value, float) for value in values):
                raise ValueError(f"{name} is not a list of numbers")
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:  # ValueError: bad JSON or not UTF-8, or shape
        raise RunNotFoundError(f"unreadable {history_file}: {error}") from None
    return history
