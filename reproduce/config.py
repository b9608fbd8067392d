"""The one run configuration: `RunConfig`, its validation and its JSON form.

The valid names live here as plain constants so that parsing the command line
and validating a config never imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import types
import typing
from pathlib import Path

from reproduce.errors import ConfigError

DATASETS = ("moons", "circles", "xor", "spirals", "linear", "digits", "mnist", "saxe")
TWO_D_DATASETS = ("moons", "circles", "xor", "spirals", "linear")
# Regression sets: a linear output and mean-squared error. `saxe` is the task of Saxe,
# McClelland & Ganguli (2014): whitened inputs, targets y = U S Vᵀ x (`datasets.saxe_task`).
REGRESSION_DATASETS = ("saxe",)
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
# `standard` is U[-1/sqrt(n), 1/sqrt(n)] (Glorot & Bengio 2010); `normal` is N(0, 1), meant
# to be scaled by `init_scale` (Saxe et al. 2014: small random weights).
INITIALIZERS = ("glorot_uniform", "he_normal", "orthogonal", "standard", "normal")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
STRATEGIES = ("default", "mirrored", "multi_worker")  # tf.distribute strategies
# A device as tf.distribute names it: "/gpu:0", "/device:CPU:1", "GPU:2".
DEVICE_PATTERN = re.compile(r"(/device:|/)?(cpu|gpu):(\d+)", re.IGNORECASE)
# Run folder names use these characters only.
NAME_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789._=-"
# Inclusive bounds of the integer fields: wide enough for any real run, and
# checked before TensorFlow loads, so that a typo is an error line instead of
# a 2 GB tensor proto or the out-of-memory killer. numpy seeds stop at 2**32.
INT_BOUNDS = {
    "depth": (1, 1_000),
    "width": (1, 1_000_000),
    "batch_size": (1, 1_000_000),
    "epochs": (1, 1_000_000),
    "samples": (1, 10_000_000),
    "steps_per_execution": (1, 100_000),
    "log_every": (1, 1_000_000_000),
    "probe_size": (1, 100_000),
    "histogram_buckets": (1, 10_000),
    "seed": (0, 2**32 - 1),
    "passes_per_epoch": (1, 1_000_000),
}
MAX_LEARNING_RATE = 1e6
MAX_INIT_SCALE = 1e3
MAX_NOISE = 100.0
# Input features and output units of each dataset, for the memory estimate.
INPUT_DIMS = {**dict.fromkeys(TWO_D_DATASETS, 2), "digits": 64, "mnist": 784, "saxe": 16}
OUTPUT_UNITS = {**dict.fromkeys(TWO_D_DATASETS, 1), "digits": 10, "mnist": 10, "saxe": 16}
MAX_EXAMPLES = {"digits": 1797, "mnist": 70_000}  # generated sets: `samples` or 1000
# Sets of a fixed size, (training, validation) examples: `saxe` holds ±each of 16 orthonormal
# directions, and as many along another orthonormal frame for validation.
FIXED_SPLITS = {"saxe": (32, 32)}
GENERATED_SAMPLES = 1000  # examples of a generated set when `samples` is None


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
    init_scale: float = 1.0  # multiplies the initial kernels (e.g. normal x 1e-3: Saxe et al.)
    use_bias: bool = True  # Dense layers with biases (Saxe et al.'s linear networks have none)
    passes_per_epoch: int = 1  # passes over the training split per Keras epoch (full-batch
    #                            runs: optimizer steps per epoch, so that epochs stay few)

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
    for name, (low, high) in INT_BOUNDS.items():
        value = getattr(config, name)
        if value is not None and value < low:
            raise ConfigError(f"{name} must be at least {low}, got {value}")
        if value is not None and value > high:
            raise ConfigError(f"{name} must be at most {high}, got {value}")
    if not (config.learning_rate > 0 and math.isfinite(config.learning_rate)):
        raise ConfigError(
            f"learning_rate must be a positive number, got {config.learning_rate}"
        )
    if config.learning_rate > MAX_LEARNING_RATE:
        raise ConfigError(
            f"learning_rate must be at most {MAX_LEARNING_RATE:g}, got {config.learning_rate:g}")
    if not 0 < config.validation_fraction < 1:
        raise ConfigError(
            "validation_fraction must be between 0 and 1 (exclusive), "
            f"got {config.validation_fraction}"
        )
    if config.samples is not None:
        validation_size(config.samples, config.validation_fraction)
    if not (config.init_scale > 0 and math.isfinite(config.init_scale)):
        raise ConfigError(f"init_scale must be a positive number, got {config.init_scale}")
    if config.init_scale > MAX_INIT_SCALE:
        raise ConfigError(
            f"init_scale must be at most {MAX_INIT_SCALE:g}, got {config.init_scale:g}")
    if config.dataset in FIXED_SPLITS and config.samples is not None:
        raise ConfigError(f"dataset {config.dataset!r} has a fixed size; samples must be "
                          f"null, got {config.samples}")
    if not (config.noise >= 0 and math.isfinite(config.noise)):
        raise ConfigError(f"noise must be at least 0, got {config.noise}")
    if config.noise > MAX_NOISE:
        raise ConfigError(f"noise must be at most {MAX_NOISE:g}, got {config.noise:g}")


# Fields that shape a run's compiled functions (Keras's train and evaluation
# steps, the loggers'); runs that agree on all of them, and on the dataset's
# shapes, can share one traced model.
TRACE_FIELDS = ("activation", "depth", "width", "optimizer", "learning_rate", "batch_size",
                "samples", "validation_fraction", "steps_per_execution", "jit_compile",
                "mixed_precision", "strategy", "devices", "log_gradients", "log_weights",
                "log_activations", "probe_size", "histogram_buckets", "use_bias")


def trace_key(config: RunConfig) -> tuple:
    """What the compiled functions of `config`'s run depend on (not the seed, data or epochs)."""
    shapes = (INPUT_DIMS[config.dataset], OUTPUT_UNITS[config.dataset],
              MAX_EXAMPLES.get(config.dataset))
    return shapes + tuple(getattr(config, field) for field in TRACE_FIELDS)


def total_examples(config: RunConfig) -> int:
    """The examples of `config`'s dataset, both splits (generated sets: 1000 by default)."""
    if config.dataset in FIXED_SPLITS:
        return sum(FIXED_SPLITS[config.dataset])
    if config.dataset in MAX_EXAMPLES:
        return min(MAX_EXAMPLES[config.dataset], config.samples or MAX_EXAMPLES[config.dataset])
    return config.samples or GENERATED_SAMPLES


def training_steps(config: RunConfig) -> int:
    """The optimizer steps of `config`'s run: batches of the training split times epochs."""
    if config.dataset in FIXED_SPLITS:
        training = FIXED_SPLITS[config.dataset][0]
    else:
        examples = total_examples(config)
        training = examples - validation_size(examples, config.validation_fraction)
    return math.ceil(training * config.passes_per_epoch / config.batch_size) * config.epochs


def parameter_count(config: RunConfig) -> int:
    """The trainable parameters of `config`'s MLP: kernels and biases of every Dense layer."""
    sizes = [INPUT_DIMS[config.dataset], *[config.width] * config.depth,
             OUTPUT_UNITS[config.dataset]]
    return sum((fan_in + 1) * fan_out for fan_in, fan_out in zip(sizes, sizes[1:]))


def estimated_memory(config: RunConfig) -> int:
    """A generous estimate, in bytes, of the memory one run of `config` needs.

    Per parameter: the weights, their gradient, two optimizer slots and the
    loggers' copies (8 float32 values). Per unit of every hidden layer: the
    forward and backward values of a batch, and the logged tensors of the
    probe (z, f, f', dLoss/df, histogram inputs). The data in float64, a few times.
    """
    examples = total_examples(config)
    units = config.width * config.depth
    return (8 * 4 * parameter_count(config)
            + 4 * 4 * config.batch_size * units
            + 8 * 4 * min(config.probe_size, examples) * units
            + 4 * 8 * examples * (INPUT_DIMS[config.dataset] + 1))


def check_fits_in_memory(config: RunConfig, available: int | None = None) -> None:
    """Refuses a run that would not fit in this machine's memory (`available` bytes).

    Raises:
        ConfigError: the estimate exceeds the memory; the message gives both.
    """
    if available is None:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    needed = estimated_memory(config)
    if needed > available:
        raise ConfigError(
            f"a run with width {config.width:,} and depth {config.depth:,} "
            f"({parameter_count(config):,} parameters) needs about {_gib(needed)} of memory, "
            f"but this machine has {_gib(available)}; use a smaller --width, --depth, "
            f"--batch-size or --probe-size")


def _gib(size: int) -> str:
    return f"{size / 2**30:,.1f} GiB"


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
