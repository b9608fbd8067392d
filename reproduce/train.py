"""`train(config)`: one run, from data to a complete run folder."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.framework import config as tf_config

import callbacks as run_callbacks
from reproduce import datasets, distribute, distributed_fit, models, runs
from reproduce.config import RunConfig
from reproduce.tensorboard import write_run_hparams


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What `train` produced."""

    run_dir: Path
    config: RunConfig
    history: dict[str, list[float]]  # Keras's History.history
    status: str  # runs.STATUS_COMPLETE or runs.STATUS_DIVERGED
    wall_time: float  # seconds from start to the marker
    steps: int  # optimizer steps taken

    @property
    def final(self) -> dict[str, float]:
        """The last epoch's value of every metric."""
        return {name: values[-1] for name, values in self.history.items() if values}


def train(
    config: RunConfig,
    logdir: str | Path = "logs",
    overwrite: bool = False,
    verbose: int | str = "auto",
    mnist_path: str | Path | None = None,
) -> RunResult:
    """Trains one configuration and writes its run folder.

    The folder gets `config.json`, `probe.npz`, TensorBoard event files in
    `train/` and `validation/`, `model.keras`, the run's hparams summary,
    `history.json` and, last, the `COMPLETE` marker. Under a distribution
    strategy (`config.strategy`) only the chief writes the folder; the other
    workers take the same decisions and write into a temporary folder.

    Args:
        config: the run to train.
        logdir: log root; the run goes to `runs.run_dir(config, logdir)`.
        overwrite: replace a completed run instead of refusing.
        verbose: Keras `fit` verbosity (0 silences the per-epoch progress).
        mnist_path: cached `mnist.npz` for the `mnist` dataset.

    Returns:
        A `RunResult`.

    Raises:
        ConfigError: the log root is not writable.
        DataError: the dataset cannot be built.
        RunExistsError: the run is complete and `overwrite` is false.
    """
    strategy = distribute.make_strategy(config)
    chief = distribute.is_chief(strategy)

    def check_chief_may_train():
        runs.check_writable(logdir)
        runs.check_not_complete(runs.run_dir(config, logdir), overwrite)
        return []

    distribute.chief_decides(strategy, 0, check_chief_may_train)
    dataset = datasets.load_dataset(config, mnist_path)
    # Other workers compute the same summaries into a folder of their own, deleted at the end.
    run_dir = (runs.prepare_run_dir(config, logdir, overwrite) if chief
               else Path(tempfile.mkdtemp(prefix="reproduce-worker-")))
    try:
        result = _train(config, strategy, run_dir, dataset, verbose, chief)
    finally:
        if not chief:
            shutil.rmtree(run_dir, ignore_errors=True)
    return dataclasses.replace(result, run_dir=runs.run_dir(config, logdir))


def _train(config: RunConfig, strategy, run_dir: Path, dataset, verbose, chief: bool) -> RunResult:
    start = time.perf_counter()
    _set_up_session(config)
    devices = distribute.device_names(strategy)
    if verbose:
        print(f"{runs.run_name(config)}: training on {', '.join(devices)}", file=sys.stderr)

    with strategy.scope():
        model = models.build_model(config, dataset.input_dim, dataset.n_classes)
        models.compile_model(model, config, dataset.n_classes)
    probe_x, probe_y = datasets.make_probe(dataset, config.probe_size, config.seed)
    if chief:
        (run_dir / runs.CONFIG_FILE).write_text(config.to_json())
        np.savez(run_dir / runs.PROBE_FILE, x=probe_x, y=probe_y)

    train_data, validation_data = datasets.make_pipelines(dataset, config.batch_size, config.seed)
    callbacks = make_callbacks(config, run_dir, (probe_x, probe_y))
    if config.strategy == "default":
        history = model.fit(
            train_data,
            validation_data=validation_data,
            epochs=config.epochs,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the pipeline shuffles, seeded
        )
    else:
        history = distributed_fit.fit(model, train_data, validation_data, config.epochs,
                                      callbacks, verbose)
    model.save(run_dir / runs.MODEL_FILE)  # every worker saves: saving may need collectives
    history_values = {
        name: [float(value) for value in values] for name, values in history.history.items()
    }
    steps = int(model.optimizer.iterations.numpy())
    diverged_at = next((callback.first_nonfinite_step for callback in callbacks
                        if isinstance(callback, run_callbacks.BatchLossLogger)), None)
    diverged = diverged_at is not None or _diverged(history_values)
    status = runs.STATUS_DIVERGED if diverged else runs.STATUS_COMPLETE
    wall_time = time.perf_counter() - start
    result = RunResult(run_dir, config, history_values, status, wall_time, steps)
    if not chief:
        return result
    write_run_hparams(run_dir, config)
    (run_dir / runs.HISTORY_FILE).write_text(json.dumps(history_values, indent=2) + "\n")
    runs.write_marker(
        run_dir,
        {"status": status, "wall_time_s": round(wall_time, 3), "steps": steps,
         "steps_per_epoch": int(train_data.cardinality().numpy()),
         "epochs": len(history_values.get("loss", [])), "final": result.final,
         "devices": devices, "replicas": int(strategy.num_replicas_in_sync),
         **({"diverged_at_step": diverged_at} if diverged_at is not None else {})},
    )
    return result


def make_callbacks(config: RunConfig, run_dir: Path, probe) -> list[keras.callbacks.Callback]:
    """Returns Keras's TensorBoard callback plus ours, all writing into `run_dir`."""
    probe_options = {
        "probe": probe,
        "every_n_steps": config.log_every,
        "histogram_buckets": config.histogram_buckets,
        "probe_size": config.probe_size,
        "seed": config.seed,
    }
    loggers = [
        (config.log_gradients, run_callbacks.GradientLogger),
        (config.log_weights, run_callbacks.WeightLogger),
        (config.log_activations, run_callbacks.ActivationLogger),
    ]
    return [
        keras.callbacks.TensorBoard(log_dir=str(run_dir), write_graph=False),
        run_callbacks.BatchLossLogger(run_dir),
        *(logger(run_dir, **probe_options) for enabled, logger in loggers if enabled),
        keras.callbacks.TerminateOnNaN(),
    ]


def _set_up_session(config: RunConfig) -> None:
    keras.backend.clear_session()
    policy = "mixed_float16" if config.mixed_precision else "float32"
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(config.seed)
    # Keras refuses XLA while op determinism is on, so jit runs do without it.
    if config.jit_compile:
        tf_config.disable_op_determinism()
    else:
        tf.config.experimental.enable_op_determinism()


def _diverged(history: dict[str, list[float]]) -> bool:
    return any(not math.isfinite(value) for value in history.get("loss", []))
