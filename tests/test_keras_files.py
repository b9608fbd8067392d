"""`keras_files` writes and reads Keras's own files: compared with Keras's on many models."""

import io
import zipfile

import h5py
import keras
import numpy as np
import pytest

from reproduce import keras_files, models
from reproduce.config import TEST_CONFIG


def our_mlp():
    model = models.build_model(TEST_CONFIG.replace(depth=2, width=8), 2, 2)
    models.compile_model(model, TEST_CONFIG, 2)
    return model


def convnet():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    model.compile(optimizer="rmsprop", loss="mse")
    return model


def recurrent():
    model = keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(4),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    return model


def two_outputs():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(6, activation="tanh")(inputs)
    model = keras.Model(inputs, {"a": keras.layers.Dense(1, name="a")(hidden),
                                 "b": keras.layers.Dense(2, name="b")(hidden)})
    model.compile(optimizer="adam", loss={"a": "mse", "b": "mse"})
    return model


@keras.saving.register_keras_serializable("test_keras_files")
class Subclassed(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.blocks = [keras.layers.Dense(5, activation="relu"), keras.layers.Dense(5)]
        self.head = keras.layers.Dense(1)

    def call(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def subclassed():
    model = Subclassed()
    model(np.zeros((1, 3), np.float32))
    model.compile(optimizer="adam", loss="mse")
    return model


BUILDERS = [our_mlp, convnet, recurrent, two_outputs, subclassed]


def trained(build, seed=0):
    """A model with every variable away from its initial value, optimizer state included."""
    keras.utils.set_random_seed(seed)
    model = build()
    shape = (3,) if isinstance(model, Subclassed) else model.inputs[0].shape[1:]
    x = np.random.default_rng(0).normal(size=(8, *shape)).astype(np.float32)
    y = keras.tree.map_structure(np.asarray, model.predict(x, verbose=0))
    model.fit(x, keras.tree.map_structure(lambda value: value + 1, y), epochs=2, verbose=0)
    return model, x


def h5_tree(file) -> list:
    """Every group and dataset of an HDF5 file: path, attributes, dtype and bytes."""
    entries = []
    with h5py.File(file, "r") as h5:
        h5.visititems(lambda name, item: entries.append((
            name, dict(item.attrs), str(getattr(item, "dtype", "")),
            item[()].tobytes() if isinstance(item, h5py.Dataset) else None)))
    return entries


def archive_contents(path) -> tuple:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        return (names, archive.read("config.json"),
                h5_tree(io.BytesIO(archive.read("model.weights.h5"))))


def same_weights(first, second) -> bool:
    first, second = first.get_weights(), second.get_weights()
    return len(first) == len(second) and all(
        a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(first, second))


@pytest.mark.parametrize("build", BUILDERS, ids=lambda build: build.__name__)
def test_files_saved_and_models_loaded_are_kerass_own(build, tmp_path):
    model, x = trained(build)
    for _ in range(2):  # the second save replays the recorded walk
        keras_files.save_weights(model, tmp_path / "ours.weights.h5")
        keras_files.save_model(model, tmp_path / "ours.keras")
    model.save_weights(tmp_path / "keras.weights.h5")
    model.save(tmp_path / "keras.keras")
    assert h5_tree(tmp_path / "ours.weights.h5") == h5_tree(tmp_path / "keras.weights.h5")
    assert archive_contents(tmp_path / "ours.keras") == archive_contents(tmp_path / "keras.keras")

    expected = keras.saving.load_model(tmp_path / "keras.keras", compile=False, safe_mode=True)
    for _ in range(2):  # the second load replays the walk recorded for this config
        loaded = keras_files.load_model(tmp_path / "keras.keras")
        assert loaded is not expected and same_weights(loaded, expected)
        assert loaded.get_config() == expected.get_config()
    for got, want in zip(keras.tree.flatten(loaded.predict(x, verbose=0)),
                         keras.tree.flatten(model.predict(x, verbose=0)), strict=True):
        np.testing.assert_array_equal(got, want)
    fresh = build()
    fresh.optimizer.build(fresh.trainable_variables)
    keras_files.load_weights(fresh, tmp_path / "keras.weights.h5")
    assert same_weights(fresh, model)
    assert [variable.numpy().tobytes() for variable in fresh.optimizer.variables] == [
        variable.numpy().tobytes() for variable in model.optimizer.variables]


def test_a_model_whose_objects_changed_is_walked_again(tmp_path):
    model, _ = trained(our_mlp)
    keras_files.save_weights(model, tmp_path / "before.weights.h5")
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.5), loss="mse")
    model.optimizer.build(model.trainable_variables)
    keras_files.save_weights(model, tmp_path / "ours.weights.h5")
    model.save_weights(tmp_path / "keras.weights.h5")
    assert h5_tree(tmp_path / "ours.weights.h5") == h5_tree(tmp_path / "keras.weights.h5")
    assert h5_tree(tmp_path / "ours.weights.h5") != h5_tree(tmp_path / "before.weights.h5")


def test_a_model_with_assets_is_saved_and_loaded_as_keras_does(tmp_path):
    lookup = keras.layers.StringLookup(vocabulary=["a", "b", "c"])
    model = keras.Sequential([keras.Input((1,), dtype="string"), lookup])
    keras_files.save_model(model, tmp_path / "ours.keras")
    model.save(tmp_path / "keras.keras")
    assert archive_contents(tmp_path / "ours.keras") == archive_contents(tmp_path / "keras.keras")
    loaded = keras_files.load_model(tmp_path / "ours.keras")
    assert loaded.layers[0].get_vocabulary() == lookup.get_vocabulary()


@pytest.mark.parametrize("build", [our_mlp, convnet], ids=lambda build: build.__name__)
def test_reuse_loads_an_archive_of_a_known_structure_into_the_model_built_for_it(build, tmp_path):
    keras.backend.clear_session()  # the same layer names in both
    first, _ = trained(build)
    keras_files.save_model(first, tmp_path / "first.keras")
    keras.backend.clear_session()
    second, _ = trained(build, seed=1)
    keras_files.save_model(second, tmp_path / "second.keras")
    keras_files.save_model(trained(recurrent)[0], tmp_path / "other.keras")
    assert not same_weights(first, second)

    reuse = {}
    loaded = keras_files.load_model(tmp_path / "first.keras", reuse)
    assert same_weights(loaded, first)
    again = keras_files.load_model(tmp_path / "second.keras", reuse)
    assert again is loaded  # every weight replaced, the non-trainable ones included
    assert same_weights(again, keras.saving.load_model(tmp_path / "second.keras", compile=False))
    other = keras_files.load_model(tmp_path / "other.keras", reuse)
    assert other is not loaded and len(reuse) == 2
