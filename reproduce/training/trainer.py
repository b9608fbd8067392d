"""`train(config)`: one run, from data to a complete run folder."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from fnmatch import fnmatchcase
from pathlib import Path

import keras
import tensorflow as tf

import callbacks as run_callbacks
from reproduce import datasets, runs
from reproduce.config import RunConfig
from reproduce.errors import Interrupted, WorkerLostError
from reproduce.tensorboard.summaries import write_run_hparams
from reproduce.training import distribute, distributed_fit, model_cache, models, tf_internals
from reproduce.training.validation import EpochValidation


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
    wait: bool = False,
    on_start: Callable[[], None] | None = None,
    reuse_models: bool = False,
) -> RunResult:
    """Trains one configuration and writes its run folder.

    The folder gets `config.json`, `probe.npz`, the step-0 weights, TensorBoard
    event files in `train/` and `validation/`, `model.keras`, the run's hparams summary,
    `history.json` and, last, the `COMPLETE` marker. One process at a time
    writes a run folder: the run's OS lock (`runs.write_lock`) is held from the
    checks to the marker. Under a distribution strategy (`config.strategy`)
    only the chief locks and writes the folder; the other workers take the
    same decisions and write into a temporary folder.

    Args:
        config: the run to train.
        logdir: log root; the run goes to `runs.run_dir(config, logdir)`.
        overwrite: replace a completed run instead of refusing.
        verbose: Keras `fit` verbosity (0 silences the per-epoch progress).
        mnist_path: cached `mnist.npz` for the `mnist` dataset.
        wait: if another process is training the run, wait for it to end
            (then refuse if it completed, or train it if it did not) instead
            of refusing at once.
        on_start: called once the run may start, before any data is built.
        reuse_models: train on this process's cached compiled model for runs
            like this one (`model_cache`) instead of a fresh one, which saves
            the tracing; the results are the same bit for bit.

    Returns:
        A `RunResult`.

    Raises:
        Interrupted: Ctrl-C; the unfinished run folder has been removed.
        WorkerLostError: another worker of a multi-worker run went away.
        ConfigError: the log root is not writable.
        DataError: the dataset cannot be built.
        RunBusyError: another process is training the run and `wait` is false.
        RunExistsError: the run is complete and `overwrite` is false.
    """
    strategy = distribute.make_strategy(config)
    chief = distribute.is_chief(strategy)
    path = runs.run_dir(config, logdir)
    with contextlib.ExitStack() as lock:

        def check_chief_may_train():
            runs.check_writable(logdir)
            runs.check_not_complete(path, overwrite)
            lock.enter_context(runs.write_lock(path, wait))
            runs.check_not_complete(path, overwrite)  # it may have completed while we waited
            return []

        distribute.chief_decides(strategy, 0, check_chief_may_train)
        if on_start:
            on_start()
        dataset = datasets.load_dataset(config, mnist_path)
        # Other workers compute the same summaries into a folder of their own, deleted at the end.
        run_dir = (runs.prepare_run_dir(config, logdir, overwrite) if chief
                   else Path(tempfile.mkdtemp(prefix="reproduce-worker-")))
        try:
            result = _train(config, strategy, run_dir, dataset, verbose, chief,
                            reuse_models and config.strategy == "default")
        except KeyboardInterrupt:
            if chief and runs.discard_incomplete(run_dir):  # never leave a half-written run
                raise Interrupted([runs.run_name(config)]) from None
            raise
        except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                tf.errors.CancelledError) as error:
            if not distribute.is_multi_worker(strategy):
                raise
            reason = str(error).strip().splitlines()[0].rsplit("}} ", 1)[-1]  # no op name
            raise WorkerLostError(f"lost contact with another worker: {reason}") from None
        finally:
            if not chief:
                shutil.rmtree(run_dir, ignore_errors=True)
    return dataclasses.replace(result, run_dir=path)


def _train(config: RunConfig, strategy, run_dir: Path, dataset, verbose, chief: bool,
           reuse_model: bool) -> RunResult:
    start = time.perf_counter()
    _set_up_session(config, reuse_model)
    devices = distribute.device_names(strategy)
    if verbose:
        print(f"{runs.run_name(config)}: training on {', '.join(devices)}", file=sys.stderr)

    with strategy.scope():
        if reuse_model:
            model = model_cache.prepare_model(config, dataset.input_dim, dataset.n_classes)
        else:
            model = models.build_model(config, dataset.input_dim, dataset.n_classes)
            models.compile_model(model, config, dataset.n_classes)
    probe_x, probe_y = datasets.make_probe(dataset, config.probe_size, config.seed)
    if chief:
        runs.save_config(config, run_dir)
        runs.save_probe(probe_x, probe_y, run_dir)
    # The step-0 weights, so the analysis never rebuilds a model (every worker: may need
    # collectives, like model.save below).
    runs.save_initial_weights(model, run_dir)

    train_data, validation_data = datasets.make_pipelines(dataset, config.batch_size, config.seed,
                                                          config.passes_per_epoch)
    stop = _StopAtBatchEnd(runs.run_name(config))
    callbacks = [*make_callbacks(config, run_dir, (probe_x, probe_y), keep_traces=reuse_model),
                 *task_callbacks(config, run_dir), stop]
    with _ctrl_c_stops_at_batch_end(stop):
        if config.strategy == "default":
            models.build_state(model, train_data.element_spec)  # else the step is traced twice
            history = model.fit(
                train_data,
                epochs=config.epochs,
                # `fit(validation_data=...)`'s numbers, at about half its cost per epoch
                callbacks=[EpochValidation(validation_data, callbacks), *callbacks],
                verbose=verbose,
                shuffle=False,  # the pipeline shuffles, seeded
            )
        else:
            history = distributed_fit.fit(model, train_data, validation_data, config.epochs,
                                          callbacks, verbose)
    runs.save_model(models.without_recorder(model), run_dir)  # every worker: may need collectives
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
    runs.save_history(history_values, run_dir)
    runs.write_marker(run_dir, runs.Marker(
        status=runs.RunStatus(status), wall_time_s=round(wall_time, 3), steps=steps,
        steps_per_epoch=int(train_data.cardinality().numpy()),
        epochs=len(history_values.get("loss", [])), final=result.final,
        devices=devices, replicas=int(strategy.num_replicas_in_sync),
        workers=distribute.worker_count(strategy), diverged_at_step=diverged_at,
        data_sha256=datasets.fingerprint(dataset)))
    return result


def make_callbacks(config: RunConfig, run_dir: Path, probe,
                   keep_traces: bool = False) -> list[keras.callbacks.Callback]:
    """Returns our callbacks, all writing into `run_dir`.

    `EpochLogger` writes the epoch scalars of Keras's TensorBoard callback
    (same tags and layout), cheaper.

    With `keep_traces`, the model keeps the traced train step with the batch
    loss capture after `fit`, for the next run on the same model.
    """
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
        run_callbacks.EpochLogger(run_dir),
        run_callbacks.BatchLossLogger(run_dir, keep_capture=keep_traces),
        *(logger(run_dir, **probe_options) for enabled, logger in loggers if enabled),
        keras.callbacks.TerminateOnNaN(),
    ]


def task_callbacks(config: RunConfig, run_dir: Path) -> list[keras.callbacks.Callback]:
    """The callbacks a dataset calls for: the `saxe` task's mode strengths (claim C6)."""
    if config.dataset != "saxe":
        return []
    from callbacks.tags import mode_name

    task = datasets.saxe_task(config)
    names = [mode_name(strength) for strength in task.strengths]
    return [run_callbacks.ModeStrengthLogger(run_dir, task.u, task.v, names)]


# For tests that must act while a run is provably training: runs whose name matches
# this pattern (fnmatch) stop at their first batch end, print a "held" line and wait
# for Ctrl-C, or for the file named by RELEASE_VARIABLE to exist.
HOLD_VARIABLE = "REPRODUCE_TEST_HOLD"
RELEASE_VARIABLE = "REPRODUCE_TEST_RELEASE"


class _StopAtBatchEnd(keras.callbacks.Callback):
    """Raises KeyboardInterrupt at the first batch end after `requested` is set.

    Holds the run at its first batch end when its name matches `HOLD_VARIABLE`.
    """

    requested = False

    def __init__(self, run_name: str):
        super().__init__()
        self.run_name = run_name
        self.hold = fnmatchcase(run_name, os.environ.get(HOLD_VARIABLE) or "")

    def on_train_batch_end(self, batch, logs=None):
        if self.hold:
            self.hold = False
            self._wait_for_release()
        if self.requested:
            raise KeyboardInterrupt

    on_test_batch_end = on_train_batch_end

    def _wait_for_release(self):
        step = int(self.model.optimizer.iterations.numpy())
        print(f"{self.run_name}: held at step {step} (pid {os.getpid()}, {HOLD_VARIABLE})",
              flush=True)
        release = os.environ.get(RELEASE_VARIABLE)
        while not (self.requested or (release and os.path.exists(release))):
            time.sleep(0.01)  # Ctrl-C sets `requested` from the signal handler


@contextlib.contextmanager
def _ctrl_c_stops_at_batch_end(stop: _StopAtBatchEnd):
    """Turns Ctrl-C during training into a stop at the next batch end.

    Interrupting TensorFlow in the middle of a compiled call can corrupt the
    process's memory (glibc aborts it), so the first Ctrl-C only asks; a
    second one interrupts at once. Outside the main thread, or where Ctrl-C
    is ignored (sweep workers), nothing changes.
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is signal.SIG_IGN):
        yield
        return

    def request_stop(signal_number, frame):
        if stop.requested:
            raise KeyboardInterrupt
        stop.requested = True

    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if stop.requested:
        raise KeyboardInterrupt


def _set_up_session(config: RunConfig, keep_models: bool = False) -> None:
    if not keep_models:
        model_cache.clear()
        keras.backend.clear_session()
    policy = "mixed_float16" if config.mixed_precision else "float32"
    keras.mixed_precision.set_global_policy(policy)
    if keep_models:
        tf_internals.set_random_seed(config.seed)  # a reused model: its traces kept
    else:
        keras.utils.set_random_seed(config.seed)
    # Keras refuses XLA while op determinism is on, so jit runs do without it.
    if config.jit_compile:
        tf_internals.disable_op_determinism()
    else:
        tf.config.experimental.enable_op_determinism()


def _diverged(history: dict[str, list[float]]) -> bool:
    return any(not math.isfinite(value) for value in history.get("loss", []))
