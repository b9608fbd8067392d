"""Sweeps: a TOML grid of configurations, run resumably, in parallel processes.

A sweep file has a top-level `experiment`, a `[grid]` table whose lists are
combined (every combination is one run) and a `[fixed]` table applied to
every run; all keys are `RunConfig` field names.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import enum
import functools
import itertools
import multiprocessing
import os
import signal
import sys
import threading
import time
import tomllib
from importlib import resources
from pathlib import Path

from reproduce import quiet, runs
from reproduce import workers as worker_processes
from reproduce.config import RunConfig, field_names, trace_key, training_steps
from reproduce.errors import ConfigError, Interrupted, RunBusyError, RunExistsError

DEFAULT_SWEEP = "article.toml"
SWEEP_KEYS = ("experiment", "grid", "fixed")


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A grid of configurations."""

    experiment: str
    grid: dict[str, list]  # field -> values; every combination is one run
    fixed: dict  # field -> value shared by every run

    def configs(self) -> list[RunConfig]:
        """Returns one validated config per grid combination, in file order.

        Raises:
            ConfigError: a combination is not a valid `RunConfig`.
        """
        names = list(self.grid)
        configs = []
        for values in itertools.product(*(self.grid[name] for name in names)):
            fields = {**self.fixed, "experiment": self.experiment, **dict(zip(names, values))}
            try:
                configs.append(RunConfig.from_dict(fields))
            except ConfigError as error:
                raise ConfigError(f"sweep: {error}") from None
        if not configs:
            raise ConfigError("sweep: the grid gives no configuration (an empty list)")
        names = [runs.run_name(config) for config in configs]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ConfigError(f"sweep: several configurations share the run folder {repeated[0]} "
                              f"(a repeated grid value, or fields the folder name leaves out)")
        return configs

    def with_grid(self, **overrides) -> "Sweep":
        """Returns a copy whose grid entries are replaced by the non-empty `overrides`."""
        grid = dict(self.grid)
        grid.update({name: list(values) for name, values in overrides.items() if values})
        sweep = dataclasses.replace(self, grid=grid)
        sweep.configs()  # validates
        return sweep


def default_sweep_path():
    """The article sweep shipped inside the package (found by non-editable installs too)."""
    return resources.files("reproduce.sweeps").joinpath(DEFAULT_SWEEP)


def load_sweep(path=None) -> Sweep:
    """Reads a sweep file (the packaged article sweep when `path` is None).

    Raises:
        ConfigError: the file is missing, not TOML, or has unknown keys or bad values.
    """
    source = default_sweep_path() if path is None else Path(path)
    try:
        text = source.read_text()
    except OSError as error:
        raise ConfigError(f"cannot read sweep file {str(path)!r}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"sweep file {source} is not UTF-8 text (byte {error.start})") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # Python 3.11 gives no line for an error at the end ("at end of document").
        where = "" if " line " in str(error) else f" (line {len(text.splitlines()) or 1})"
        raise ConfigError(f"sweep file {source} is not valid TOML: {error}{where}") from None
    _check_keys(table, SWEEP_KEYS, "top level")
    grid, fixed = table.get("grid", {}), table.get("fixed", {})
    for name, value in (("grid", grid), ("fixed", fixed)):
        if not isinstance(value, dict):
            raise ConfigError(f"sweep file {source}: {name} must be a table [{name}], "
                              f"got {value!r}")
    _check_keys(grid, field_names(), "[grid]")
    _check_keys(fixed, field_names(), "[fixed]")
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"sweep file {source}: [grid] {name} must be a non-empty list, "
                              f"got {values!r}")
    both = sorted(set(grid) & set(fixed))
    if both:
        raise ConfigError(f"sweep file {source}: {', '.join(both)} in both [grid] and [fixed]")
    sweep = Sweep(table.get("experiment", RunConfig().experiment), grid, fixed)
    sweep.configs()
    return sweep


def _check_keys(table: dict, valid, where: str) -> None:
    unknown = sorted(set(table) - set(valid))
    if unknown:
        raise ConfigError(
            f"unknown sweep key(s) {', '.join(map(repr, unknown))} in {where}; "
            f"valid keys: {', '.join(valid)}"
        )


class Outcome(str, enum.Enum):
    """How one run of a sweep ended."""

    COMPLETE = runs.STATUS_COMPLETE  # trained here
    DIVERGED = runs.STATUS_DIVERGED  # trained here, stopped at a NaN loss
    SKIPPED = "skipped"  # already complete when the sweep started
    BUSY = "busy"  # another process was training it; waited for at the end
    ELSEWHERE = "elsewhere"  # completed by another process meanwhile
    FAILED = "failed"


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """How one run of a sweep ended."""

    name: str
    status: Outcome
    seconds: float
    final: dict
    error: str = ""


@dataclasses.dataclass(frozen=True)
class SweepSummary:
    experiment_dir: Path
    outcomes: list[RunOutcome]
    seconds: float
    jobs: int
    chief: bool = True  # false on the other workers of a multi-worker sweep, which write nothing
    runner: str = ""  # where the jobs ran, when not in local worker processes

    @property
    def trained(self) -> list[RunOutcome]:
        return [outcome for outcome in self.outcomes
                if outcome.status in (Outcome.COMPLETE, Outcome.DIVERGED)]

    @property
    def failed(self) -> list[RunOutcome]:
        return self._with(Outcome.FAILED)

    def _with(self, status: Outcome) -> list[RunOutcome]:
        return [outcome for outcome in self.outcomes if outcome.status == status]

    def describe(self) -> str:
        trained = self.trained
        elsewhere = len(self._with(Outcome.ELSEWHERE))
        line = (f"{len(self.outcomes)} runs: {len(trained)} trained, "
                f"{len(self._with(Outcome.SKIPPED))} already complete, "
                + (f"{elsewhere} completed by another process, " if elsewhere else "")
                + f"{len(self.failed)} failed, in {format_duration(self.seconds)} with "
                f"{self.jobs} job(s)" + (f" on {self.runner}" if self.runner else ""))
        if trained:
            mean = sum(outcome.seconds for outcome in trained) / len(trained)
            line += (f"; {mean:.1f} s per run in its worker, "
                     f"{self.seconds / len(trained):.1f} s per run of wall time")
        return line


def format_duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def run_all(sweep: Sweep, logdir, jobs: int | None = None, verbose: int = 0,
            reuse_models: bool = True, on_core_idle=None, ray=None) -> SweepSummary:
    """Trains every configuration of `sweep` that has no completed run yet.

    Completed (and diverged) runs are skipped, interrupted ones are redone,
    a failing run is reported and the sweep goes on. A run that another
    process is training is skipped at first, then waited for at the end: it
    counts as completed by that process, or is trained here if that process
    died. With `jobs` > 1, runs go to that many worker processes (each with
    one TensorFlow thread); the default is `default_jobs()`. Runs that share a
    trace key go to the same worker, which traces their model once
    (`reuse_models`; the results are the same without it, only slower).
    `on_core_idle`, a function of no argument, is called once in a thread of
    this process as the workers start: while their fork server loads their
    imports on one core (`workers`), another is free for work needed after
    the sweep (imports). The call has ended when `run_all` returns.
    With `ray` (`ray_pool.RayOptions`), the runs are tasks of workers on a
    Ray cluster instead (`ray_pool`), `jobs` of them (default: as many as
    the cluster holds), with the same guarantees.

    Returns:
        A `SweepSummary`; its `describe()` line gives the wall time and time per run.
    """
    configs = sweep.configs()
    strategy = _sweep_strategy(configs, jobs)
    if ray is not None and strategy == "multi_worker":
        raise ConfigError("--ray trains each run in one worker; a multi_worker sweep spreads "
                          "each run over the TF_CONFIG workers instead")
    if strategy != "default" and ray is None:
        jobs = jobs or 1  # each run already uses every device
    start = time.perf_counter()
    if ray is None:
        jobs = max(1, min(jobs or default_jobs(), len(configs)))
    else:
        from reproduce import ray_pool

        # The imports needed after the sweep, while Ray starts and its workers load theirs.
        meanwhile = threading.Thread(target=on_core_idle or (lambda: None), daemon=True)
        meanwhile.start()
        on_core_idle = None
        jobs = min(ray_pool.worker_count(ray, jobs), len(configs))

    def check_completed():
        runs.check_writable(logdir)
        return [runs.is_complete(runs.run_dir(config, logdir)) for config in configs]

    chief = True
    if strategy == "multi_worker":  # the chief's folder decides, on every worker
        from reproduce import distribute

        multi_worker = distribute.make_strategy(configs[0])
        chief = distribute.is_chief(multi_worker)
        completed = distribute.chief_decides(multi_worker, len(configs), check_completed)
    else:
        completed = check_completed()
    progress = _Progress(len(configs), start)
    outcomes: dict[int, RunOutcome] = {}
    pending = []
    for index, config in enumerate(configs, start=1):
        if completed[index - 1]:
            outcomes[index] = RunOutcome(runs.run_name(config), Outcome.SKIPPED, 0.0, {})
            progress.report(index, outcomes[index])
        else:
            pending.append((index, config))
    progress.pending = len(pending)
    try:
        # Ray's workers may start in another folder, or on another node of a shared filesystem.
        options = _TrainOptions(str(Path(logdir).absolute() if ray else logdir), verbose,
                                reuse_models)
        train = _train_pending if ray is None else functools.partial(_train_on_ray, ray)
        train(pending, jobs, options, progress, outcomes, on_core_idle)
        busy = [(index, config) for index, config in pending
                if outcomes[index].status == Outcome.BUSY]
        if busy:
            print(f"Waiting for {len(busy)} run(s) in progress in another process", flush=True)
            train(busy, jobs, dataclasses.replace(options, wait=True), progress, outcomes)
    except KeyboardInterrupt as interruption:
        unfinished = [config for index, config in pending
                      if index not in outcomes or outcomes[index].status == Outcome.BUSY]
        stopped = getattr(interruption, "unfinished", []) + _discard_unfinished(unfinished, logdir)
        raise Interrupted(stopped) from None
    if ray is not None:
        meanwhile.join()
    return SweepSummary(
        experiment_dir=runs.experiment_dir(logdir, sweep.experiment),
        outcomes=[outcomes[index] for index in sorted(outcomes)],
        seconds=time.perf_counter() - start,
        jobs=jobs,
        chief=chief,
        runner=f"Ray ({ray.address})" if ray else "",
    )


def default_jobs() -> int:
    """Worker processes of a sweep by default: one per core, plus one.

    When every core is busy, a worker is still blocked, off the CPU, part of
    its time (two workers side by side: ~0.92 s of wall time for ~0.86 s of
    CPU per run, the cores ~85% busy), so one worker per core leaves them
    idle that long. With one more, the article sweep takes 8-10% less time on
    2 cores (with two more, no less).
    """
    return (os.cpu_count() or 1) + 1


@dataclasses.dataclass(frozen=True)
class _TrainOptions:
    """How `train_one` trains each run of a sweep."""

    logdir: str
    verbose: int = 0  # Keras fit verbosity, in-process runs only
    reuse_models: bool = True  # share one traced model between runs of a trace key
    wait: bool = False  # wait for runs another process is training
    announce: bool = True  # the worker prints each run's start line (Ray's driver prints its own)


def _train_on_ray(ray, pending, jobs, options: _TrainOptions, progress, outcomes: dict,
                  on_core_idle=None) -> None:
    from reproduce import ray_pool

    ray_pool.train_pending(pending, ray, dataclasses.replace(options, verbose=0, announce=False),
                           jobs, progress, outcomes)


def _train_pending(pending, jobs: int, options: _TrainOptions, progress, outcomes: dict,
                   on_core_idle=None) -> None:
    if jobs == 1 or len(pending) <= 1:
        for index, config in pending:
            outcomes[index] = train_one(config.to_json(), options, progress.position(index))
            progress.report(index, outcomes[index])
        return
    options = dataclasses.replace(options, verbose=0)
    context = worker_processes.context()
    workers = [concurrent.futures.ProcessPoolExecutor(
        1, mp_context=context, initializer=_init_worker,
        initargs=(os.getpid(), *worker_processes.state())) for _ in range(jobs)]
    meanwhile = threading.Thread(target=on_core_idle or (lambda: None), daemon=True)
    meanwhile.start()  # the first submit waits for the fork server's imports
    try:
        futures = {}
        assignment = assign_workers([config for _, config in pending], jobs)
        for (index, config), worker in zip(pending, assignment):
            future = workers[worker].submit(train_one, config.to_json(), options,
                                            progress.position(index))
            futures[future] = index
        for future in concurrent.futures.as_completed(futures):
            index = futures[future]
            outcomes[index] = future.result()
            progress.report(index, outcomes[index])
    except BaseException:
        for worker in workers:
            worker.shutdown(wait=False, cancel_futures=True)
        for process in multiprocessing.active_children():  # stop runs in progress now
            process.terminate()
            process.join()
        raise
    for worker in workers:
        worker.shutdown()
    meanwhile.join()


# A trace costs about as much as this many optimizer steps of these MLPs.
TRACE_COST_STEPS = 1500


def assign_workers(configs: list[RunConfig], jobs: int) -> list[int]:
    """Returns a worker number per run: runs sharing a trace key go to the same worker.

    Each worker then traces each of its architectures once (`model_cache`).
    Groups go, largest first, to the worker with the least work so far; a
    group's work is its runs' optimizer steps plus one trace.
    """
    groups: dict[tuple, list[int]] = {}
    for position, config in enumerate(configs):
        groups.setdefault(trace_key(config), []).append(position)

    def work(positions: list[int]) -> int:
        return TRACE_COST_STEPS + sum(training_steps(configs[position]) for position in positions)

    load = [0] * jobs
    assignment = [0] * len(configs)
    for positions in sorted(groups.values(), key=work, reverse=True):
        worker = load.index(min(load))
        load[worker] += work(positions)
        for position in positions:
            assignment[position] = worker
    return assignment


def _discard_unfinished(configs: list[RunConfig], logdir) -> list[str]:
    """Removes the folders that `configs`' interrupted runs left; returns their names."""
    return [runs.run_name(config) for config in configs
            if runs.discard_incomplete(runs.run_dir(config, logdir))]


def _sweep_strategy(configs: list[RunConfig], jobs: int | None) -> str:
    """Returns the sweep's strategy; multi-worker sweeps train one run at a time, all alike.

    Raises:
        ConfigError: multi_worker is mixed with other strategies, or `jobs` > 1.
    """
    strategies = sorted({config.strategy for config in configs})
    if "multi_worker" in strategies:
        if len(strategies) > 1:
            raise ConfigError(f"a multi_worker sweep cannot mix strategies, got {strategies}")
        if jobs not in (None, 1):
            raise ConfigError(f"a multi_worker sweep trains one run at a time; --jobs must be 1, "
                              f"got {jobs}")
        return "multi_worker"
    return "mirrored" if "mirrored" in strategies else "default"


class _Progress:
    """One line per run as it starts and ends, with an ETA from the finished runs' pace."""

    def __init__(self, total: int, start: float):
        self.total = total
        self.start_time = start
        self.pending = 0
        self.finished = 0

    def position(self, index: int) -> str:
        return f"[{index}/{self.total}]"

    def report(self, index: int, outcome: RunOutcome) -> None:
        prefix = f"{self.position(index)} {outcome.name}"
        if outcome.status == Outcome.SKIPPED:
            print(f"{prefix}  already complete, skipped", flush=True)
            return
        if outcome.status == Outcome.BUSY:
            print(f"{prefix}  in progress in another process, skipped for now", flush=True)
            return
        self.finished += 1
        elapsed = time.perf_counter() - self.start_time
        remaining = self.pending - self.finished
        eta = f"  ETA {format_duration(elapsed / self.finished * remaining)}" if remaining else ""
        if outcome.status == Outcome.ELSEWHERE:
            print(f"{prefix}  completed by another process{eta}", flush=True)
            return
        if outcome.status == Outcome.FAILED:
            detail = f"FAILED: {outcome.error}"
        else:
            if "val_accuracy" in outcome.final or "val_loss" not in outcome.final:
                detail = f"val_acc={outcome.final.get('val_accuracy', float('nan')):.3f}"
            else:  # a regression (the `saxe` set) has no accuracy
                detail = f"val_loss={outcome.final['val_loss']:.3g}"
            if outcome.status == Outcome.DIVERGED:
                detail += "  DIVERGED (NaN loss)"
        print(f"{prefix}  {detail}  {outcome.seconds:.1f}s{eta}", flush=True)


def _init_worker(sweep: int, environment: dict, folder: str) -> None:
    worker_processes.follow(environment, folder)
    # Ctrl-C is the sweep's to handle: it stops the workers and names their runs.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker whose sweep was killed stops at once instead of writing on behind its back.
    threading.Thread(target=_exit_without_sweep, args=(sweep,), daemon=True).start()
    configure_worker(threads=1)  # the workers already use every core


def configure_worker(threads: int) -> None:
    """Sets up a process that trains runs of a sweep: `threads` TensorFlow threads each way."""
    import tensorflow as tf  # loaded already in a local worker (`workers`)

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    if os.environ.get(quiet.QUIET_VARIABLE):
        quiet.start_devices()


def _exit_without_sweep(sweep: int) -> None:
    while _alive(sweep):
        time.sleep(0.5)
    os._exit(1)


def _alive(pid: int) -> bool:
    """Whether process `pid` runs (a killed process left unreaped, a zombie, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc (macOS)
        return True


def train_one(config_json: str, options: _TrainOptions, position: str = "") -> RunOutcome:
    """Trains one configuration (in a worker or in-process); errors become a failed outcome.

    Prints the run's start line, from the worker that runs it, once it holds
    the run's lock. A run another process is training is `BUSY` (with
    `options.wait`, it is waited for); one that process completed is `ELSEWHERE`.
    """
    config = RunConfig.from_json(config_json)
    name = runs.run_name(config)
    start = time.perf_counter()

    def announce():
        if options.announce:
            print(f"{position} {name}  started".lstrip(), flush=True)

    try:
        from reproduce.train import train

        result = train(config, options.logdir, verbose=options.verbose, wait=options.wait,
                       on_start=announce, reuse_models=options.reuse_models)
    except RunBusyError:
        return RunOutcome(name, Outcome.BUSY, 0.0, {})
    except RunExistsError:  # it was not complete when the sweep started
        return RunOutcome(name, Outcome.ELSEWHERE, 0.0, {})
    except Exception as error:  # noqa: BLE001 - one bad run must not stop the sweep
        print(f"{name}: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        return RunOutcome(name, Outcome.FAILED, time.perf_counter() - start, {},
                          f"{type(error).__name__}: {error}")
    return RunOutcome(name, Outcome(result.status), result.wall_time, result.final)
