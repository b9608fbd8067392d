"""Running many runs: sweeps, resumable, on local worker processes or on Ray.

    sweep_file.py      `Sweep`, `load_sweep`: the TOML grid of configurations
    sweep.py           `run_all(sweep)`: what to train, which worker, waiting, Ctrl-C
    outcomes.py        how each run ended, the progress lines, the sweep's summary
    workers.py         the worker processes (one fork server) and `train_one` in a worker
    worker_imports.py  what the fork server imports once for its workers
    ray_pool.py        the runs as tasks of worker actors on a Ray cluster

Exports the names below from their modules, on first use: the command line
reads a sweep file before TensorFlow loads.
"""

from reproduce.exports import exports

__getattr__, __all__ = exports(__name__, {
    "sweep_file": ("Sweep", "default_sweep_path", "load_sweep"),
    "sweep": ("assign_workers", "default_jobs", "run_all"),
    "outcomes": ("Outcome", "RunOutcome", "SweepSummary", "format_duration"),
    "ray_pool": ("RayOptions", "require_ray"),
})
