"""A sweep's runs on a Ray cluster: each run a task of a worker actor, one worker per slot.

`--ray local` starts an embedded Ray instance on this machine (one CPU slot per
core plus one, as the local pool has workers); an address (`auto`,
`ray://head:10001`, `head:6379`) joins a running cluster. The log root must
then be a folder every node sees at the same path (a shared filesystem).

As in the local pool (`sweep`), runs that share a trace key go to the same
worker (an actor, a process of its own), which traces their model once; each
worker holds at most AHEAD (2) of its runs at a time, the one it trains and
the next, so it never waits for the driver and the driver always knows what
runs where. A run is trained by `workers.train_one`, exactly as in
a local worker (one TensorFlow thread per CPU of the run's slot), under the
run folder's lock: a run another process trains is skipped and waited for,
a run whose worker dies (killed, out of memory, its node lost) is reported
failed and its folder, left without a completion marker, is trained again
by the next start; the worker is replaced and goes on with its other runs.
Ctrl-C cancels every task and kills the workers.
"""

from __future__ import annotations

import dataclasses
import os

from reproduce import runs
from reproduce.errors import ConfigError

EXTRA = "pip install -e '.[cluster]'"
LOCAL = "local"
# What a worker takes from the driver's environment: our settings and TensorFlow's logging.
FORWARDED_PREFIXES = ("REPRODUCE_", "TF_CPP_", "KERAS_BACKEND")


@dataclasses.dataclass(frozen=True)
class RayOptions:
    """Where and how a sweep runs on Ray."""

    address: str  # LOCAL, "auto", "ray://host:10001" or "host:port"
    cpus_per_run: float = 1.0  # Ray's num_cpus of each worker
    gpus_per_run: float = 0.0  # Ray's num_gpus of each worker

    def __post_init__(self):
        if not self.address:
            raise ConfigError("--ray needs an address: 'local', 'auto' or ray://HOST:PORT")
        if not self.cpus_per_run > 0:
            raise ConfigError(f"--ray-cpus must be more than 0, got {self.cpus_per_run:g}")
        if not self.gpus_per_run >= 0:
            raise ConfigError(f"--ray-gpus must be 0 or more, got {self.gpus_per_run:g}")


def require_ray():
    """Returns the `ray` module.

    Raises:
        ConfigError: Ray is not installed (the `cluster` extra).
    """
    # Each run's start line is printed by its worker; Ray would fold alike lines together.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--ray needs Ray, which is not installed: {EXTRA}") from None
    return ray


def connect(options: RayOptions):
    """Starts or joins Ray as `options.address` says; returns the `ray` module."""
    ray = require_ray()
    if ray.is_initialized():
        return ray
    quiet = {"include_dashboard": False, "log_to_driver": True, "configure_logging": False}
    if options.address == LOCAL:
        from reproduce.execution.sweep import default_jobs

        ray.init(num_cpus=default_jobs(), **quiet)
    else:
        ray.init(address=options.address, **quiet)
    return ray


def worker_count(options: RayOptions, jobs: int | None) -> int:
    """`jobs`, or as many runs as the cluster holds at once: its CPUs (and GPUs) over each
    run's share. Connects to Ray."""
    ray = connect(options)
    if jobs:
        return jobs
    resources = ray.cluster_resources()
    count = int(resources.get("CPU", 1) // options.cpus_per_run)
    if options.gpus_per_run:
        count = min(count, int(resources.get("GPU", 0) // options.gpus_per_run))
    return max(1, count)


class SweepWorker:
    """A Ray actor that trains runs one at a time, as a local sweep worker does."""

    def __init__(self, environment: dict, threads: int):
        os.environ.update(environment)
        from reproduce import quiet
        from reproduce.execution import workers

        # As `worker_imports` does for a local worker, without the figures' imports.
        if os.environ.get(quiet.QUIET_VARIABLE):
            quiet.install(start_devices=False)
        os.environ.setdefault(quiet.LEVEL_VARIABLE, "2")
        import reproduce.training.trainer  # noqa: F401 - TensorFlow, Keras and our callbacks

        workers.configure_worker(threads)

    def train(self, config_json: str, options, position: str):
        from reproduce.execution.workers import train_one

        return train_one(config_json, options, position)

    def pid(self) -> int:
        return os.getpid()


# Runs handed to a worker ahead: the next one is queued in the worker while it trains one,
# so that it never waits for the driver between runs.
AHEAD = 2


def train_pending(pending, options: RayOptions, train_options, jobs: int, progress,
                  outcomes: dict) -> None:
    """Trains `pending` ((index, config) pairs) on `jobs` Ray workers, filling `outcomes` by
    index."""
    from reproduce.execution.sweep import assign_workers

    ray = connect(options)
    count = max(1, min(jobs, len(pending)))
    remote = ray.remote(SweepWorker).options(num_cpus=options.cpus_per_run,
                                             num_gpus=options.gpus_per_run, max_restarts=0)
    environment = {name: value for name, value in os.environ.items()
                   if name.startswith(FORWARDED_PREFIXES)}
    threads = max(1, int(options.cpus_per_run))
    queues = [[] for _ in range(count)]
    for item, worker in zip(pending, assign_workers([config for _, config in pending], count)):
        queues[worker].append(item)
    slots = [_Slot(ray, lambda: remote.remote(environment, threads), queue, train_options,
                   progress) for queue in queues]
    try:
        for slot in slots:
            slot.fill()
        while any(slot.in_flight for slot in slots):
            by_reference = {slot.in_flight[0][0]: slot for slot in slots if slot.in_flight}
            (reference,), _ = ray.wait(list(by_reference), num_returns=1)
            index, outcome = by_reference[reference].take()
            outcomes[index] = outcome
            progress.report(index, outcome)
    finally:  # on Ctrl-C too: killing a worker stops its run at once
        for slot in slots:
            slot.stop()


class _Slot:
    """One Ray worker and the runs assigned to it, handed over AHEAD at a time, in order."""

    def __init__(self, ray, start_worker, queue, train_options, progress):
        self.ray = ray
        self.start_worker = start_worker
        self.worker = start_worker()
        self.queue = queue  # (index, config) not handed over yet
        self.in_flight = []  # (reference, index, config), the first one training
        self.train_options = train_options
        self.progress = progress

    def fill(self) -> None:
        while self.queue and len(self.in_flight) < AHEAD:
            index, config = self.queue.pop(0)
            reference = self.worker.train.remote(config.to_json(), self.train_options,
                                                 self.progress.position(index))
            self.in_flight.append((reference, index, config))
            if len(self.in_flight) == 1:
                self._announce()

    def _announce(self) -> None:
        # Printed here: Ray forwards a worker's own prints late, and out of order.
        _, index, config = self.in_flight[0]
        print(f"{self.progress.position(index)} {runs.run_name(config)}  started", flush=True)

    def take(self):
        """The outcome of the run that finished (the first in flight); hands over the next."""
        from reproduce.execution.outcomes import Outcome, RunOutcome

        reference, index, config = self.in_flight.pop(0)
        try:
            outcome = self.ray.get(reference)
        except self.ray.exceptions.RayActorError as error:  # the worker process died
            outcome = RunOutcome(runs.run_name(config), Outcome.FAILED, 0.0, {},
                                 f"its Ray worker died ({type(error).__name__})")
            # The runs handed over behind it never started: they go to a new worker.
            self.queue[:0] = [(index, config) for _, index, config in self.in_flight]
            self.in_flight = []
            self.worker = self.start_worker()
        except self.ray.exceptions.RayError as error:
            outcome = RunOutcome(runs.run_name(config), Outcome.FAILED, 0.0, {},
                                 f"{type(error).__name__}: {str(error).splitlines()[0]}")
        if self.in_flight:
            self._announce()
        self.fill()
        return index, outcome

    def stop(self) -> None:
        """Kills the worker; returns once the run it was training has released its lock."""
        self.ray.kill(self.worker)
        if self.in_flight:
            # A killed worker holds its run's lock until its process has ended, after Ray
            # has failed its task: wait for the kernel to release it.
            _, _, config = self.in_flight[0]
            with runs.write_lock(runs.run_dir(config, self.train_options.logdir), wait=True):
                pass
