"""Run folders: the one definition of a run folder, shared by training and every reader.

    folders.py    names and files of a run folder, finding runs under a log root
    marker.py     the completion marker `COMPLETE` (`Marker`, `RunStatus`)
    locks.py      one writer per run folder (an OS lock), the no-overwrite rule
    artifacts.py  a run's files written and read back: config, probe, weights, model, history
    record.py     `Run`, the record every reader goes through; `load_runs`, `read_run_events`
    events.py     the one reader of TensorBoard event files (of any folder)

Exports the names below from their modules (on first use, so that importing
`reproduce.runs` stays light); `events` is imported as a module:
`from reproduce.runs import events`.
"""

from reproduce.exports import exports

__getattr__, __all__ = exports(__name__, {
    "folders": ("CONFIG_FILE", "HISTORY_FILE", "INITIAL_WEIGHTS_FILE", "MARKER_FILE",
                "MODEL_FILE", "NAME_SUFFIXES", "PROBE_FILE", "TRAIN_DIR", "VALIDATION_DIR",
                "check_writable", "experiment_dir", "experiment_dir_of", "find_runs",
                "group_name", "run_dir", "run_name"),
    "marker": ("STATUS_COMPLETE", "STATUS_DIVERGED", "Marker", "RunStatus", "is_complete",
               "read_marker", "write_marker"),
    "locks": ("check_not_busy", "check_not_complete", "discard_incomplete", "lock_file",
              "prepare_run_dir", "write_lock"),
    "artifacts": ("load_config", "load_history", "load_initial_weights", "load_model",
                  "load_probe", "save_config", "save_history", "save_initial_weights",
                  "save_model", "save_probe"),
    "record": ("Run", "RunEvents", "load_runs", "read_experiment", "read_run_events"),
})
