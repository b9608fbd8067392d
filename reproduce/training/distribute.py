"""The tf.distribute strategy of a run: which one, on which devices, who writes.

`default` trains on one device (a GPU when one is visible). `mirrored`
replicates the model over several devices of this machine. `multi_worker`
replicates it over several machines described by the standard `TF_CONFIG`
environment variable; only the chief writes the run folder.

CPU devices beyond `/cpu:0` (e.g. `--devices /cpu:0,/cpu:1`) split the CPU
into logical devices, which lets the distributed paths run without a GPU.
That has to happen before TensorFlow starts its runtime in the process.
"""

from __future__ import annotations

import functools
import os

import tensorflow as tf

from reproduce.config import RunConfig, device_list
from reproduce.errors import ConfigError, ReproduceError, RunBusyError, RunExistsError
from reproduce.training.tf_config import read_tf_config

# A lost worker fails the collective ops after this long instead of hanging forever.
COLLECTIVE_TIMEOUT_S = 600
# Refusals of the chief that every worker raises as the same kind of error.
SHARED_REFUSALS = (RunBusyError, RunExistsError)


def make_strategy(config: RunConfig) -> tf.distribute.Strategy:
    """Returns the strategy `config.strategy` names, on `config.devices` for mirrored.

    Raises:
        ConfigError: the devices do not exist, or TF_CONFIG is malformed.
    """
    if config.strategy == "mirrored":
        return _mirrored(config.devices)
    if config.strategy == "multi_worker":
        return _multi_worker(os.environ.get("TF_CONFIG", ""))
    return tf.distribute.get_strategy()


def _mirrored(devices: str | None) -> tf.distribute.MirroredStrategy:
    if devices is None:
        return tf.distribute.MirroredStrategy()  # every visible GPU, else the CPU
    names = device_list(devices)
    cpu_indices = [int(name.rsplit(":", 1)[1]) for name in names if name.startswith("/cpu")]
    if cpu_indices:
        split_cpu(max(cpu_indices) + 1)
    available = {device.name.lower().replace("/device:", "/")
                 for device in tf.config.list_logical_devices()}
    missing = [name for name in names if name not in available]
    if missing:
        raise ConfigError(
            f"device(s) {', '.join(missing)} not found; this machine has "
            f"{', '.join(sorted(available))}")
    return tf.distribute.MirroredStrategy(names)


def split_cpu(count: int) -> None:
    """Splits the CPU into `count` logical devices (a no-op if it already has them).

    Raises:
        ConfigError: TensorFlow already started with fewer CPU devices.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    configured = tf.config.get_logical_device_configuration(cpu)
    if configured and len(configured) >= count:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        if len(tf.config.list_logical_devices("CPU")) < count:
            raise ConfigError(
                f"cannot split the CPU into {count} devices: TensorFlow has already "
                f"started in this process") from None


@functools.cache  # one per process: TensorFlow allows only one collective setup
def _multi_worker(tf_config: str) -> tf.distribute.MultiWorkerMirroredStrategy:
    read_tf_config({"TF_CONFIG": tf_config})  # checks it
    options = tf.distribute.experimental.CommunicationOptions(
        timeout_seconds=COLLECTIVE_TIMEOUT_S)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run folder: the chief, or worker 0 without one."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not is_multi_worker(strategy) or resolver is None or resolver.task_type is None:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def worker_count(strategy: tf.distribute.Strategy) -> int:
    """The processes training together: the chief and the workers of the cluster."""
    if not is_multi_worker(strategy) or strategy.cluster_resolver is None:
        return 1
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    return max(1, sum(len(cluster.get(job, [])) for job in ("chief", "worker")))


def device_names(strategy: tf.distribute.Strategy) -> list[str]:
    """The devices this process trains on (for a multi-worker run, the chief's)."""
    if isinstance(strategy, (tf.distribute.MirroredStrategy,
                             tf.distribute.MultiWorkerMirroredStrategy)):
        return list(strategy.extended.worker_devices)
    gpus = tf.config.list_logical_devices("GPU")  # Keras's choice on the default strategy
    return [(gpus or tf.config.list_logical_devices("CPU"))[0].name]


def chief_decides(strategy: tf.distribute.Strategy, count: int, check) -> list[bool]:
    """Runs `check()` on the chief only; returns its `count` flags on every worker.

    An error `check` raises is raised on every worker (as the same kind when it
    is one of `SHARED_REFUSALS`), so that no worker waits for the others
    forever. Every worker must call this at the same point.
    """
    if not is_multi_worker(strategy):
        return list(check())
    problem, flags = None, [False] * count
    if is_chief(strategy):
        try:
            flags = list(check())
        except ReproduceError as error:
            problem = error
    kinds = [isinstance(problem, kind) for kind in SHARED_REFUSALS]
    failed, *flags = _broadcast_from_chief(strategy, [problem is not None, *kinds, *flags])
    kinds, flags = flags[:len(kinds)], flags[len(kinds):]
    if failed:
        kind = next((kind for kind, flag in zip(SHARED_REFUSALS, kinds) if flag), ReproduceError)
        raise problem or kind("the chief worker stopped with an error; see its output")
    return flags


def _broadcast_from_chief(strategy, flags: list[bool]) -> list[bool]:
    mine = tf.constant(flags if is_chief(strategy) else [False] * len(flags), tf.float32)

    def contribution():
        first_replica = tf.equal(
            tf.distribute.get_replica_context().replica_id_in_sync_group, 0)
        return tf.where(first_replica, mine, tf.zeros_like(mine))

    @tf.function
    def broadcast():
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(contribution), axis=None)

    return [bool(value > 0.5) for value in broadcast().numpy()]
