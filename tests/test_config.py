import json

import pytest

from reproduce import runs
from reproduce.config import TEST_CONFIG, RunConfig, device_list
from reproduce.errors import ConfigError


def test_json_round_trip_gives_equal_config():
    config = TEST_CONFIG.replace(activation="tanh", samples=None, learning_rate=0.1)
    assert RunConfig.from_json(config.to_json()) == config


def test_int_is_accepted_for_float_field_and_stored_as_float():
    config = RunConfig(learning_rate=1)
    assert config.learning_rate == 1.0 and isinstance(config.learning_rate, float)


def test_unknown_key_is_rejected_with_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) 'depht'.*valid keys: .*depth"):
        RunConfig.from_dict({"depht": 3})


@pytest.mark.parametrize(
    "values, message",
    [
        ({"depth": "4"}, r"'depth' must be int, got '4'"),
        ({"depth": True}, r"'depth' must be int, got True"),
        ({"jit_compile": 1}, r"'jit_compile' must be bool, got 1"),
        ({"samples": 2.5}, r"'samples' must be int or null"),
        ({"activation": "relux"}, r"invalid activation 'relux'; choose from linear, relu"),
        ({"dataset": "iris"}, r"invalid dataset 'iris'; choose from moons"),
        ({"width": 0}, r"width must be at least 1, got 0"),
        ({"learning_rate": 0}, r"learning_rate must be a positive number, got 0"),
        ({"validation_fraction": 1.0}, r"validation_fraction must be between 0 and 1"),
        ({"experiment": "My Run"}, r"invalid experiment 'My Run'"),
        ({"strategy": "tpu"}, r"invalid strategy 'tpu'; choose from default, mirrored, multi_w"),
        ({"devices": "/gpu:0"}, r"devices '/gpu:0' need strategy 'mirrored', got 'default'"),
        ({"strategy": "mirrored", "devices": "/tpu:0"}, r"invalid devices '/tpu:0'; give"),
        ({"strategy": "mirrored", "devices": "/gpu:0,/gpu:0"}, r"invalid devices '/gpu:0,/gp"),
        ({"strategy": "mirrored", "devices": "/cpu:0,/device:CPU:0"}, r"invalid devices '/cpu"),
        ({"strategy": "mirrored", "devices": "/gpu:1, GPU:01"}, r"invalid devices '/gpu:1, G"),
        ({"strategy": "mirrored", "devices": "/cpu:0,/cpu:1", "jit_compile": True},
         r"jit_compile with devices '/cpu:0,/cpu:1' fails in XLA"),
    ],
)
def test_invalid_values_are_rejected(values, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict(values)


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        RunConfig().depth = 3


def test_run_name_follows_configuration():
    assert runs.run_name(RunConfig(dataset="circles", activation="relu", seed=1)) == (
        "circles/relu-d4-w32-s1"
    )
    name = runs.run_name(
        RunConfig(activation="leaky_relu", learning_rate=0.1, mixed_precision=True))
    assert name == "moons/leaky_relu-d4-w32-s0-lr=0.1-fp16=1"


def test_run_names_differ_when_training_fields_differ():
    names = {runs.run_name(TEST_CONFIG.replace(batch_size=size)) for size in (8, 16, 32)}
    assert len(names) == 3


def test_run_dir_is_under_experiment(tmp_path):
    expected = tmp_path / "article" / "moons" / "linear-d4-w32-s0"
    assert runs.run_dir(RunConfig(), tmp_path) == expected


def test_config_json_is_plain_json():
    assert json.loads(TEST_CONFIG.to_json())["depth"] == TEST_CONFIG.depth


def test_device_spellings_tf_distribute_accepts_are_valid():
    config = RunConfig(strategy="mirrored", devices="/gpu:0,GPU:1, /device:GPU:2")
    assert RunConfig.from_json(config.to_json()) == config
    assert device_list(config.devices) == ["/gpu:0", "/gpu:1", "/gpu:2"]
