"""The command line's arguments: one flag per `RunConfig` field, and the shared ones.

`cli.build_parser` composes them into its subcommands.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from reproduce import config as config_module
from reproduce.config import RunConfig

DEFAULT_LOGDIR = "logs"
DEFAULT_EXPERIMENT_DIR = Path(DEFAULT_LOGDIR) / "article"

# Flag spelling where it differs from the field name.
FLAG_NAMES = {
    "log_gradients": "--gradients",
    "log_weights": "--weights",
    "log_activations": "--activations",
}
FIELD_CHOICES = {
    "dataset": config_module.DATASETS,
    "activation": config_module.ACTIVATIONS,
    "initializer": config_module.INITIALIZERS,
    "optimizer": config_module.OPTIMIZERS,
    "strategy": config_module.STRATEGIES,
}
FIELD_HELP = {
    "experiment": "experiment folder under the log root",
    "depth": "hidden layers",
    "width": "units per hidden layer",
    "learning_rate": "optimizer learning rate (> 0)",
    "batch_size": "examples per optimizer step",
    "epochs": "passes over the training split",
    "seed": "seed of data, split, weights and shuffling",
    "samples": "examples (default: 1000 generated, all of a real set)",
    "noise": "std of the Gaussian jitter of the generated 2-D sets",
    "validation_fraction": "held-out share, in (0, 1)",
    "steps_per_execution": "optimizer steps per compiled call",
    "jit_compile": "XLA-compile the train step",
    "mixed_precision": "mixed_float16 policy (float32 output)",
    "strategy": "tf.distribute strategy: default (one device), mirrored (several devices of "
                "this machine), multi_worker (several machines, configured by TF_CONFIG)",
    "devices": "mirrored only: comma-separated devices, e.g. /gpu:0,/gpu:1 "
               "(CPU indices above 0 split the CPU into logical devices)",
    "log_every": "optimizer steps between probe logs (default: ~20 logs per run)",
    "log_gradients": "log per-layer gradients (GradientLogger)",
    "log_weights": "log per-layer weights (WeightLogger)",
    "log_activations": "log per-layer activations (ActivationLogger)",
    "probe_size": "training examples in the probe batch",
    "histogram_buckets": "buckets per histogram",
    "init_scale": "multiplies the initial kernels, in (0, 1000] (normal: their std)",
    "passes_per_epoch": "passes over the training split per epoch (full-batch runs: steps "
                        "per epoch)",
    "use_bias": "Dense layers with biases",
}


def flag_name(field: str) -> str:
    return FLAG_NAMES.get(field, "--" + field.replace("_", "-"))


def add_config_arguments(parser: argparse.ArgumentParser, fields=None) -> None:
    """Adds one flag per `RunConfig` field (or per field in `fields`), defaulting to unset."""
    defaults = RunConfig()
    types = config_module.field_types()
    for field in fields or config_module.field_names():
        accepted = [kind for kind in types[field] if kind is not type(None)]
        default = getattr(defaults, field)
        help_text = f"{FIELD_HELP.get(field, field)} (default: {default})"
        kwargs = {"dest": field, "default": None, "help": help_text}
        if accepted == [bool]:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = accepted[0]
            kwargs["metavar"] = field.upper()
            if field in FIELD_CHOICES:
                kwargs["choices"] = FIELD_CHOICES[field]
                kwargs["metavar"] = "{" + ",".join(FIELD_CHOICES[field]) + "}"
        parser.add_argument(flag_name(field), **kwargs)


def config_from_args(args: argparse.Namespace, base: RunConfig | None = None) -> RunConfig:
    """Returns `base` (default `RunConfig()`) with every flag the user gave applied."""
    base = base or RunConfig()
    given = {
        field: getattr(args, field)
        for field in config_module.field_names()
        if getattr(args, field, None) is not None
    }
    return base.replace(**given)


def add_logdir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--logdir", default=DEFAULT_LOGDIR, type=Path,
        help=f"log root (default: {DEFAULT_LOGDIR})",
    )


def add_experiment_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment_dir", nargs="?", type=Path, default=DEFAULT_EXPERIMENT_DIR,
                        help=f"experiment folder (default: {DEFAULT_EXPERIMENT_DIR})")


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep_file", nargs="?", type=Path, default=None, metavar="SWEEP.toml",
                        help="sweep file (default: the packaged article sweep)")
    add_logdir_argument(parser)
    parser.add_argument("--activations", nargs="+", choices=config_module.ACTIVATIONS,
                        metavar="A", help="override the grid's activations")
    parser.add_argument("--datasets", nargs="+", choices=config_module.DATASETS,
                        metavar="D", help="override the grid's datasets")
    parser.add_argument("--seeds", nargs="+", type=int, metavar="S",
                        help="override the grid's seeds")
    parser.add_argument("--jobs", type=int, default=None,
                        help="parallel worker processes (default: one per core plus one; "
                             "1 with a strategy other than default)")
    for field in ("strategy", "devices"):
        add_config_arguments(parser, [field])
    add_ray_arguments(parser)


def add_ray_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ray", metavar="ADDRESS", default=None,
                        help="train the runs as tasks on Ray: 'local' starts Ray on this "
                             "machine, 'auto' or ray://HOST:10001 joins a cluster (needs the "
                             "cluster extra)")
    parser.add_argument("--ray-cpus", type=float, default=1.0, metavar="N",
                        help="CPUs of each run on Ray (default: 1)")
    parser.add_argument("--ray-gpus", type=float, default=0.0, metavar="N",
                        help="GPUs of each run on Ray (default: 0)")
