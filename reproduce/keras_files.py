"""A model's Keras files (`.weights.h5`, `.keras`), saved and loaded without Keras's walk.

Keras finds a model's state by walking every attribute of every object in
it (`dir`, then `getattr`); for these MLPs that walk is most of a save
(`save_weights` 37-43 -> 16 ms, `model.save` 46-50 -> 17-21 ms without it)
and part of a load (`load_model` 58-72 -> 42-49 ms, `load_weights` 34 ->
13 ms); a sweep saves twice per run and its analysis loads 35 models. The
walk meets the same objects in the same order in every model of one
structure, so it is recorded once: each object's path in the file and
its route from the model (attribute names and container positions). A save
or load then follows the routes and lets each object write or read its own
state (`save_own_variables`, `load_own_variables`) through Keras's own
stores, at the same paths, in the same order. The files are Keras's, read
with its safeguards (safe mode, zip and HDF5 size checks); tests compare
them with Keras's. A Keras without these helpers, or a model with assets,
saves and loads the usual way.
"""

from __future__ import annotations

import io
import re
import weakref
import zipfile
from pathlib import Path

try:
    from keras.src.saving import saving_lib
    from keras.src.saving.keras_saveable import KerasSaveable
    from keras.src.utils import file_utils, naming
    _AVAILABLE = all(hasattr(saving_lib, name) for name in (
        "_walk_saveable", "_get_unique_name", "_serialize_model_as_json", "_model_from_config",
        "_safe_zip_read", "_reject_zip_bomb", "H5IOStore", "_CONFIG_FILENAME",
        "_METADATA_FILENAME", "_VARS_FNAME_H5"))
except ImportError:  # another Keras: its own walk
    _AVAILABLE = False


class _Unrecordable(Exception):
    """The model's walk cannot be replayed (assets, or routes that no longer lead there)."""


# model -> (its objects' ids when recorded, walk); a walk: [(path, metadata, route, class)]
_model_walks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_structure_walks: dict[bytes, list] = {}  # a .keras file's config.json (`_structure`) -> walk


def save_weights(model, path: str | Path) -> None:
    """`model.save_weights(path)`, to a `.weights.h5` file."""
    _weights_file(model, path, "w", model.save_weights)


def load_weights(model, path: str | Path) -> None:
    """`model.load_weights(path)` of a `.weights.h5` file."""
    _weights_file(model, path, "r", model.load_weights)


def save_model(model, path: str | Path) -> None:
    """`model.save(path)`, to a `.keras` archive."""
    saveables = _saveables(model)
    if saveables is None:
        model.save(path)
        return
    config_json, metadata_json = saving_lib._serialize_model_as_json(model)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(saving_lib._METADATA_FILENAME, metadata_json)
        archive.writestr(saving_lib._CONFIG_FILENAME, config_json)
        store = saving_lib.H5IOStore(saving_lib._VARS_FNAME_H5, archive=archive, mode="w")
        try:
            _save(saveables, store)
        finally:
            store.close()
    Path(path).write_bytes(buffer.getvalue())


def load_model(path: str | Path, reuse: dict | None = None):
    """`keras.saving.load_model(path, compile=False, safe_mode=True)` of a `.keras` archive.

    Args:
        path: the archive.
        reuse: a dict the caller keeps between calls (structure -> model).
            An archive whose config is that of a model built by an earlier
            call (up to the numbering of shared objects) is loaded into that
            model, which is returned again with its weights replaced:
            building the model is most of a load (~90 of ~105 ms for these
            MLPs). For loops that use one model at a time.
    """
    import keras

    if not _AVAILABLE:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    with zipfile.ZipFile(path) as archive:
        if set(archive.namelist()) != {saving_lib._CONFIG_FILENAME,
                                       saving_lib._METADATA_FILENAME, saving_lib._VARS_FNAME_H5}:
            return keras.saving.load_model(path, compile=False, safe_mode=True)  # assets
        config_json = saving_lib._safe_zip_read(archive, saving_lib._CONFIG_FILENAME)
        structure = _structure(config_json)
        model = None if reuse is None else reuse.get(structure)
        if model is None:
            model = saving_lib._model_from_config(config_json, custom_objects=None,
                                                  compile=False, safe_mode=True)
            if reuse is not None:
                reuse[structure] = model
            if structure in _structure_walks:  # a model of this structure was walked already
                _model_walks[model] = (_objects(model), _structure_walks[structure])
        saving_lib._reject_zip_bomb(archive, saving_lib._VARS_FNAME_H5)
        weights = io.BytesIO(archive.read(saving_lib._VARS_FNAME_H5))
    saveables = _saveables(model)
    if saveables is None:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    _structure_walks[structure] = _model_walks[model][1]
    store = saving_lib.H5IOStore(weights, mode="r")
    try:
        _load(saveables, store)
    finally:
        store.close()
    return model


_SHARED_OBJECT_ID = re.compile(rb'"shared_object_id": (\d+)')


def _structure(config_json: bytes) -> bytes:
    """config.json with its shared-object ids (Python ids when saved) numbered 0, 1, ..."""
    numbers: dict[bytes, bytes] = {}
    return _SHARED_OBJECT_ID.sub(
        lambda match: b'"shared_object_id": ' + numbers.setdefault(
            match[1], str(len(numbers)).encode()), config_json)


def _weights_file(model, path, mode: str, keras_way) -> None:
    saveables = _saveables(model)
    if saveables is None:
        keras_way(path)
        return
    store = saving_lib.H5IOStore(Path(path), mode=mode)
    try:
        (_save if mode == "w" else _load)(saveables, store)
    finally:
        store.close()


def _saveables(model):
    """[(path, metadata, object)] to save or load, in Keras's order; None if Keras must walk."""
    if not _AVAILABLE or not getattr(model, "built", False):
        return None
    objects = _objects(model)
    recorded = _model_walks.get(model)
    try:
        if recorded is None or recorded[0] != objects:
            recorded = _model_walks[model] = (objects, _record(model))
        return _resolve(model, recorded[1])
    except _Unrecordable:
        return None


def _objects(model) -> tuple:
    """What a recorded walk of `model` stays valid for: its optimizer and variables."""
    optimizer = getattr(model, "optimizer", None)
    return (id(optimizer), tuple(map(id, model.variables)),
            tuple(map(id, getattr(optimizer, "variables", ()))))


def _load(saveables, store) -> None:
    for path, _, saveable in saveables:
        if hasattr(saveable, "load_own_variables"):
            saveable.load_own_variables(store.get(path))


def _save(saveables, store) -> None:
    for path, metadata, saveable in saveables:
        if hasattr(saveable, "save_own_variables"):
            saveable.save_own_variables(store.make(path, metadata=metadata))


def _resolve(model, walk) -> list:
    """Follows the walk's routes in `model`: [(path, metadata, object)]."""
    saveables = []
    for path, metadata, route, class_name in walk:
        saveable = model
        for step in route:
            if isinstance(step, str):
                saveable = getattr(saveable, step, None)
            else:
                items = list(saveable.values()) if isinstance(saveable, dict) else saveable
                saveable = items[step] if step < len(items) else None
        if type(saveable).__qualname__ != class_name:
            raise _Unrecordable(path)
        saveables.append((path, metadata, saveable))
    return saveables


def _record(model) -> list:
    """The model's walk, in saving_lib._save_state's order."""
    walk = []
    _record_saveable(model, "", (), set(), walk)
    return walk


def _record_saveable(saveable, path: str, route: tuple, visited: set, walk: list) -> None:
    if id(saveable) in visited:
        return
    if hasattr(saveable, "save_assets") or hasattr(saveable, "load_assets"):
        raise _Unrecordable(path)
    if hasattr(saveable, "save_own_variables"):
        name = getattr(saveable, "name", None)
        walk.append((path, {"name": name} if isinstance(name, str) else None, route,
                     type(saveable).__qualname__))
    visited.add(id(saveable))
    for attribute, child in saving_lib._walk_saveable(saveable):
        _record_child(child, _join(path, attribute), (*route, attribute), visited, walk, set())


def _record_child(child, path: str, route: tuple, visited: set, walk: list,
                  containers: set) -> None:
    if isinstance(child, KerasSaveable):
        _record_saveable(child, path, route, visited, walk)
    elif isinstance(child, (list, dict, tuple)):  # saving_lib._save_container_state's names
        if id(child) in containers:
            return
        containers.add(id(child))
        used_names: dict = {}
        for position, item in enumerate(child.values() if isinstance(child, dict) else child):
            if isinstance(item, KerasSaveable):
                name = naming.to_snake_case(item.__class__.__name__)
            elif isinstance(item, (list, dict, tuple)):
                name = "container"
            else:
                continue
            _record_child(item, _join(path, saving_lib._get_unique_name(name, used_names)),
                          (*route, position), visited, walk, containers)


def _join(path: str, name: str) -> str:
    return file_utils.join(path, name).replace("\\", "/")
