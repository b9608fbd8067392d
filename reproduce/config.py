"""The one run configuration: `RunConfig`, its validation and its JSON form.

The valid names live here as plain constants so that parsing the command line
and validating a config never imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from pathlib import Path

from reproduce.errors import ConfigError

DATASETS = ("moons", "circles", "xor", "spirals", "linear", "digits", "mnist")
TWO_D_DATASETS = ("moons", "circles", "xor", "spirals", "linear")
ACTIVATIONS = (
    "linear",
    "relu",
    "tanh",
    "sigmoid",
    "swish",
    "silu",
    "elu",
    "selu",
    "gelu",
    "leaky_relu",
    "softplus",
    "softsign",
    "mish",
    "relu6",
    "hard_sigmoid",
)
INITIALIZERS = ("glorot_uniform", "he_normal", "orthogonal", "standard")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
STRATEGIES = ("default", "mirrored", "multi_worker")  # tf.distribute strategies
# A device as tf.distribute names it: "/gpu:0", "/device:CPU:1", "GPU:2".
DEVICE_PATTERN = re.compile(r"(/device:|/)?(cpu|gpu):(\d+)", re.IGNORECASE)
# Run folder names use these characters only.
NAME_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789._=-"


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training run; defaults reproduce the article."""

    experiment: str = "article"  # top folder under the log root
    dataset: str = "moons"  # one of DATASETS
    activation: str = "linear"  # activation of every hidden layer, one of ACTIVATIONS
    depth: int = 4  # number of hidden Dense layers
    width: int = 32  # units per hidden layer
    initializer: str = "glorot_uniform"  # kernel initializer, one of INITIALIZERS
    optimizer: str = "adam"  # one of OPTIMIZERS
    learning_rate: float = 0.005  # optimizer step size
    batch_size: int = 32  # examples per optimizer step
    epochs: int = 20  # passes over the training split
    seed: int = 0  # seeds data generation, split, initial weights and shuffling
    samples: int | None = None  # examples: None = 1000 generated, or all of a real set
    noise: float = 0.15  # std of the Gaussian jitter of the generated 2-D sets
    validation_fraction: float = 0.2  # share of examples held out for validation
    steps_per_execution: int = 32  # optimizer steps per compiled call (4x faster than 1)
    jit_compile: bool = False  # XLA-compile the train step (Keras picks it on a GPU)
    mixed_precision: bool = False  # mixed_float16 policy, float32 output layer
    strategy: str = "default"  # one of STRATEGIES; multi_worker reads TF_CONFIG
    devices: str | None = None  # mirrored only: comma-separated devices; None = every GPU
    log_every: int | None = None  # optimizer steps between probe logs; None = ~20 per run
    log_gradients: bool = True  # attach GradientLogger
    log_weights: bool = True  # attach WeightLogger
    log_activations: bool = True  # attach ActivationLogger
    probe_size: int = 256  # training examples in the probe batch (at most all of them)
    histogram_buckets: int = 30  # buckets per histogram summary, as TensorBoard

    def __post_init__(self):
        _check_types(self)
        _check_values(self)

    def to_dict(self) -> dict:
        """Returns the fields as a JSON-ready dict."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """Returns the config as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, values: dict) -> "RunConfig":
        """Builds a config, rejecting unknown keys and wrong types.

        Raises:
            ConfigError: a key is not a field, or a value is invalid.
        """
        unknown = sorted(set(values) - set(field_names()))
        if unknown:
            raise ConfigError(
                f"unknown config key(s) {', '.join(map(repr, unknown))}; "
                f"valid keys: {', '.join(field_names())}"
            )
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        """Parses `to_json` output back into a config."""
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"config is not valid JSON: {error}") from None
        if not isinstance(values, dict):
            raise ConfigError("config JSON must be an object")
        return cls.from_dict(values)

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        """Reads a `config.json` file."""
        return cls.from_json(Path(path).read_text())

    def replace(self, **changes) -> "RunConfig":
        """Returns a copy with `changes` applied and validated."""
        return RunConfig.from_dict({**self.to_dict(), **changes})

    @property
    def is_binary(self) -> bool:
        """Whether the dataset has two classes (one sigmoid output)."""
        return self.dataset in TWO_D_DATASETS


def field_names() -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(RunConfig))


def field_types() -> dict[str, tuple[type, ...]]:
    """Maps each field to the Python types it accepts (None included when optional)."""
    hints = typing.get_type_hints(RunConfig)
    accepted = {}
    for name in field_names():
        hint = hints[name]
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            accepted[name] = typing.get_args(hint)
        else:
            accepted[name] = (hint,)
    return accepted


def _type_matches(value, accepted: tuple[type, ...]) -> bool:
    if value is None:
        return type(None) in accepted
    if isinstance(value, bool):
        return bool in accepted
    if isinstance(value, int) and float in accepted:
        return True
    return any(isinstance(value, kind) for kind in accepted if kind is not type(None))


def _check_types(config: RunConfig) -> None:
    for name, accepted in field_types().items():
        value = getattr(config, name)
        if not _type_matches(value, accepted):
            expected = " or ".join(
                "null" if kind is type(None) else kind.__name__ for kind in accepted
            )
            raise ConfigError(
                f"config field {name!r} must be {expected}, got {value!r} "
                f"({type(value).__name__})"
            )
        if float in accepted and isinstance(value, int) and not isinstance(value, bool):
            object.__setattr__(config, name, float(value))


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(
            f"invalid {name} {value!r}; choose from {', '.join(choices)}"
        )


def _check_values(config: RunConfig) -> None:
    _check_choice("dataset", config.dataset, DATASETS)
    _check_choice("activation", config.activation, ACTIVATIONS)
    _check_choice("initializer", config.initializer, INITIALIZERS)
    _check_choice("optimizer", config.optimizer, OPTIMIZERS)
    _check_choice("strategy", config.strategy, STRATEGIES)
    _check_devices(config)
    # Not ".", ".." or hidden: the experiment must be a plain folder inside the log root.
    if (not config.experiment or config.experiment.startswith(".")
            or not set(config.experiment) <= set(NAME_CHARACTERS)):
        raise ConfigError(
            f"invalid experiment {config.experiment!r}; use the characters "
            f"a-z 0-9 . _ = - only, not starting with '.'"
        )
    at_least_one = ("depth", "width", "batch_size", "epochs", "steps_per_execution",
                    "probe_size", "histogram_buckets", "log_every", "samples")
    for name in at_least_one:
        value = getattr(config, name)
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be at least 1, got {value}")
    if config.seed < 0:
        raise ConfigError(f"seed must be at least 0, got {config.seed}")
    if not (config.learning_rate > 0 and math.isfinite(config.learning_rate)):
        raise ConfigError(
            f"learning_rate must be a positive number, got {config.learning_rate}"
        )
    if not 0 < config.validation_fraction < 1:
        raise ConfigError(
            "validation_fraction must be between 0 and 1 (exclusive), "
            f"got {config.validation_fraction}"
        )
    if config.samples is not None:
        validation_size(config.samples, config.validation_fraction)
    if not (config.noise >= 0 and math.isfinite(config.noise)):
        raise ConfigError(f"noise must be at least 0, got {config.noise}")


def validation_size(samples: int, validation_fraction: float) -> int:
    """Returns how many of `samples` examples are held out for validation.

    Raises:
        ConfigError: the validation split would be empty, or the training split below 2.
    """
    n_val = int(round(samples * validation_fraction))
    if n_val < 1 or samples - n_val < 2:
        raise ConfigError(
            f"{samples} samples with validation_fraction={validation_fraction} "
            "leave an empty split; use more samples")
    return n_val


def device_list(devices: str) -> list[str]:
    """Returns comma-separated `devices` as distinct canonical names such as `/gpu:0`.

    Raises:
        ConfigError: a name is not a CPU or GPU device, or one device is named twice.
    """
    matches = [DEVICE_PATTERN.fullmatch(name.strip()) for name in devices.split(",")]
    names = [f"/{match.group(2).lower()}:{int(match.group(3))}" for match in matches if match]
    if len(names) < len(matches) or len(set(names)) < len(names):
        raise ConfigError(
            f"invalid devices {devices!r}; give distinct comma-separated devices "
            f"such as /gpu:0,/gpu:1 or /cpu:0,/cpu:1")
    return names


def _check_devices(config: RunConfig) -> None:
    if config.devices is None:
        return
    if config.strategy != "mirrored":
        raise ConfigError(
            f"devices {config.devices!r} need strategy 'mirrored', got {config.strategy!r}")
    names = device_list(config.devices)
    if config.jit_compile and sum(name.startswith("/cpu") for name in names) > 1:
        # XLA cannot reach variables on another logical CPU device (Keras's fit fails too).
        raise ConfigError(
            f"jit_compile with devices {config.devices!r} fails in XLA (logical CPU "
            f"devices); use GPUs, or drop --jit-compile")


# A run small enough for unit tests: tens of examples, two epochs.
TEST_CONFIG = RunConfig(
    experiment="test",
    depth=2,
    width=8,
    batch_size=16,
    epochs=2,
    samples=80,
    steps_per_execution=4,
    probe_size=32,
)
