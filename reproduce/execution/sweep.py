"""`run_all(sweep)`: a sweep's runs trained resumably, in parallel worker processes or on Ray."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import multiprocessing
import os
import threading
import time
from pathlib import Path

from reproduce import runs
from reproduce.config import RunConfig, trace_key, training_steps
from reproduce.errors import ConfigError, Interrupted
from reproduce.execution import workers
from reproduce.execution.outcomes import Outcome, Progress, RunOutcome, SweepSummary
from reproduce.execution.sweep_file import Sweep
from reproduce.execution.workers import TrainOptions, train_one


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
        from reproduce.execution import ray_pool

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
        from reproduce.training import distribute

        multi_worker = distribute.make_strategy(configs[0])
        chief = distribute.is_chief(multi_worker)
        completed = distribute.chief_decides(multi_worker, len(configs), check_completed)
    else:
        completed = check_completed()
    progress = Progress(len(configs), start)
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
        options = TrainOptions(str(Path(logdir).absolute() if ray else logdir), verbose,
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


def _train_on_ray(ray, pending, jobs, options: TrainOptions, progress, outcomes: dict,
                  on_core_idle=None) -> None:
    from reproduce.execution import ray_pool

    ray_pool.train_pending(pending, ray, dataclasses.replace(options, verbose=0, announce=False),
                           jobs, progress, outcomes)


def _train_pending(pending, jobs: int, options: TrainOptions, progress, outcomes: dict,
                   on_core_idle=None) -> None:
    if jobs == 1 or len(pending) <= 1:
        for index, config in pending:
            outcomes[index] = train_one(config.to_json(), options, progress.position(index))
            progress.report(index, outcomes[index])
        return
    options = dataclasses.replace(options, verbose=0)
    context = workers.context()
    pools = [concurrent.futures.ProcessPoolExecutor(
        1, mp_context=context, initializer=workers.init_worker,
        initargs=(os.getpid(), *workers.state())) for _ in range(jobs)]
    meanwhile = threading.Thread(target=on_core_idle or (lambda: None), daemon=True)
    meanwhile.start()  # the first submit waits for the fork server's imports
    try:
        futures = {}
        assignment = assign_workers([config for _, config in pending], jobs)
        for (index, config), worker in zip(pending, assignment):
            future = pools[worker].submit(train_one, config.to_json(), options,
                                            progress.position(index))
            futures[future] = index
        for future in concurrent.futures.as_completed(futures):
            index = futures[future]
            outcomes[index] = future.result()
            progress.report(index, outcomes[index])
    except BaseException:
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)
        for process in multiprocessing.active_children():  # stop runs in progress now
            process.terminate()
            process.join()
        raise
    for pool in pools:
        pool.shutdown()
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
