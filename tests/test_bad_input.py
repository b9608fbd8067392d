"""Bad input to every command, through the real command line: exit status 2, one
`error:` line naming the bad value, no traceback, and nothing written.

Every case runs in its own folder, holding the files `FILES` names, with
`logs` and `out` as the paths a command would write to.
"""

import time

import pytest
from tensorboard.compat.proto import event_pb2
from tensorboard.plugins.histogram import summary_v2 as histogram_summary
from tensorboard.summary.writer.record_writer import RecordWriter

from conftest import run_cli
from reproduce import runs
from reproduce.config import TEST_CONFIG
from reproduce.execution import load_sweep

# A run folder with config, marker and one gradient histogram: enough for `compare`.
RUN = "exp/moons/relu-d2-w8-s0"
INCOMPLETE_RUN = "incomplete/moons/relu-d2-w8-s0"
FILES = {
    "notes.txt": "not a folder\n",
    "empty/": None,
    f"{INCOMPLETE_RUN}/{runs.CONFIG_FILE}": TEST_CONFIG.to_json(),
    "syntax.toml": 'experiment = "x"\n[grid]\nseed = [0 1]\n',
    "unclosed.toml": '[grid]\nseed = [0,\n  1,\n',
    "top_key.toml": 'experiment = "x"\ncolour = "red"\n',
    "grid_key.toml": '[grid]\ncolour = ["red"]\n',
    "fixed_key.toml": '[fixed]\nactivaton = "relu"\n',
    "fixed_type.toml": '[fixed]\ndepth = "four"\n',
    "fixed_float.toml": '[fixed]\nepochs = 1.5\n',
    "fixed_bool.toml": '[fixed]\njit_compile = "yes"\n',
    "fixed_range.toml": '[fixed]\nhistogram_buckets = 0\n',
    "fixed_inf.toml": '[fixed]\nlearning_rate = inf\n',
    "fixed_huge.toml": '[fixed]\nhistogram_buckets = 1000000000\n',
    "saxe_samples.toml": '[grid]\nsamples = [64]\n[fixed]\ndataset = "saxe"\n',
    "fixed_too_big_for_memory.toml": '[fixed]\nwidth = 200000\ndepth = 100\n',
    "grid_not_list.toml": '[grid]\nactivation = "relu"\n',
    "grid_not_table.toml": 'grid = 5\n',
    "grid_type.toml": '[grid]\nseed = ["0"]\n',
    "grid_choice.toml": '[grid]\nactivation = ["relu", "rleu"]\n',
    "grid_empty_list.toml": '[grid]\nseed = []\n',
    "grid_repeated.toml": '[grid]\nseed = [0, 1, 0]\n',
    "grid_unnamed_field.toml": '[grid]\nhistogram_buckets = [10, 30]\n',
    "grid_and_fixed.toml": '[grid]\nseed = [0]\n[fixed]\nseed = 1\n',
    "experiment_up.toml": 'experiment = ".."\n',
    "experiment_type.toml": 'experiment = 5\n',
    "binary.toml": b"\xff\xfe\x00 not text",
}

CASES = {
    # train: names, types, ranges, confinement, an unwritable log root
    "train unknown activation": (["train", "--activation", "foo"], "'foo'"),
    "train unknown dataset": (["train", "--dataset", "iris"], "'iris'"),
    "train unknown optimizer": (["train", "--optimizer", "adamw"], "'adamw'"),
    "train depth not int": (["train", "--depth", "two"], "'two'"),
    "train learning rate not float": (["train", "--learning-rate", "fast"], "'fast'"),
    "train negative seed": (["train", "--seed", "-1"], "seed must be at least 0, got -1"),
    "train zero buckets": (["train", "--histogram-buckets", "0"],
                           "histogram_buckets must be at least 1, got 0"),
    "train zero probe": (["train", "--probe-size", "0"], "probe_size must be at least 1, got 0"),
    "train nan learning rate": (["train", "--learning-rate", "nan"], "got nan"),
    "train validation fraction 1": (["train", "--validation-fraction", "1"], "got 1.0"),
    "train experiment ..": (["train", "--experiment", ".."], "invalid experiment '..'"),
    "train experiment .": (["train", "--experiment", "."], "invalid experiment '.'"),
    "train hidden experiment": (["train", "--experiment", ".cache"],
                                "invalid experiment '.cache'"),
    "train absolute experiment": (["train", "--experiment", "/tmp/x"],
                                  "invalid experiment '/tmp/x'"),
    "train nested experiment": (["train", "--experiment", "a/../b"],
                                "invalid experiment 'a/../b'"),
    "train unwritable logdir": (["train", "--logdir", "notes.txt/logs"],
                                "log dir 'notes.txt/logs' is not writable"),
    # Upper bounds, checked before TensorFlow loads.
    "train huge buckets": (["train", "--histogram-buckets", "1000000000"],
                           "histogram_buckets must be at most 10000, got 1000000000"),
    "train huge width": (["train", "--width", "1000000000"],
                         "width must be at most 1000000, got 1000000000"),
    "train huge depth": (["train", "--depth", "100000"], "depth must be at most 1000, got 100000"),
    "train huge batch": (["train", "--batch-size", "10000000"],
                         "batch_size must be at most 1000000, got 10000000"),
    "train huge epochs": (["train", "--epochs", "10000000"],
                          "epochs must be at most 1000000, got 10000000"),
    "train huge samples": (["train", "--samples", "100000000"],
                           "samples must be at most 10000000, got 100000000"),
    "train huge steps per execution": (["train", "--steps-per-execution", "1000000"],
                                       "steps_per_execution must be at most 100000"),
    "train huge log every": (["train", "--log-every", "10000000000"],
                             "log_every must be at most 1000000000, got 10000000000"),
    "train huge probe": (["train", "--probe-size", "1000000"],
                         "probe_size must be at most 100000, got 1000000"),
    "train huge seed": (["train", "--seed", "4294967296"],
                        "seed must be at most 4294967295, got 4294967296"),
    "train huge learning rate": (["train", "--learning-rate", "1e9"],
                                 "learning_rate must be at most 1e+06, got 1e+09"),
    "train huge noise": (["train", "--noise", "1000"], "noise must be at most 100, got 1000"),
    "train zero init scale": (["train", "--init-scale", "0"],
                              "init_scale must be a positive number, got 0.0"),
    "train nan init scale": (["train", "--init-scale", "nan"], "init_scale must be a positive"),
    "train huge init scale": (["train", "--init-scale", "1e9"],
                              "init_scale must be at most 1000, got 1e+09"),
    "train unknown initializer": (["train", "--initializer", "gaussian"], "'gaussian'"),
    "train zero passes": (["train", "--passes-per-epoch", "0"],
                          "passes_per_epoch must be at least 1, got 0"),
    "train huge passes": (["train", "--passes-per-epoch", "10000000"],
                          "passes_per_epoch must be at most 1000000, got 10000000"),
    "train bias not a flag value": (["train", "--use-bias", "no"],
                                    "unrecognized arguments: no"),
    "train saxe with samples": (["train", "--dataset", "saxe", "--samples", "100"],
                                "dataset 'saxe' has a fixed size; samples must be null, got 100"),
    "train model too big for memory": (["train", "--width", "200000", "--depth", "100"],
                                       "(3,960,020,600,001 parameters) needs about "),
    # Fails only once the data are built, after TensorFlow loads.
    "train too few samples": (["train", "--samples", "2"], "2 samples"),
    # sweep and article: flags and sweep files
    "sweep zero jobs": (["sweep", "--jobs", "0"], "--jobs must be at least 1, got 0"),
    "sweep negative jobs": (["sweep", "--jobs", "-3"], "got -3"),
    "sweep too many jobs": (["sweep", "--jobs", "1000"], "--jobs must be at most 64, got 1000"),
    "sweep huge value": (["sweep", "fixed_huge.toml"],
                         "histogram_buckets must be at most 10000, got 1000000000"),
    "sweep model too big for memory": (["sweep", "fixed_too_big_for_memory.toml"],
                                       "GiB of memory, but this machine has"),
    "sweep negative seed": (["sweep", "--seeds", "-1"], "seed must be at least 0, got -1"),
    "sweep repeated seed": (["sweep", "--seeds", "0", "0"],
                            "share the run folder circles/linear-d4-w32-s0"),
    "sweep unknown activation": (["sweep", "--activations", "relu", "foo"], "'foo'"),
    "sweep unknown dataset": (["sweep", "--datasets", "iris"], "'iris'"),
    "sweep missing file": (["sweep", "missing.toml"], "cannot read sweep file 'missing.toml'"),
    "sweep file is a folder": (["sweep", "empty"], "'empty': Is a directory"),
    "sweep syntax error": (["sweep", "syntax.toml"], "at line 3"),
    "sweep unclosed array": (["sweep", "unclosed.toml"], "(line 3)"),
    "sweep unknown top key": (["sweep", "top_key.toml"], "'colour' in top level"),
    "sweep unknown grid key": (["sweep", "grid_key.toml"], "'colour' in [grid]"),
    "sweep unknown fixed key": (["sweep", "fixed_key.toml"], "'activaton' in [fixed]"),
    "sweep wrong type": (["sweep", "fixed_type.toml"], "'depth' must be int, got 'four'"),
    "sweep float for int": (["sweep", "fixed_float.toml"], "'epochs' must be int, got 1.5"),
    "sweep string for bool": (["sweep", "fixed_bool.toml"], "got 'yes'"),
    "sweep out of range": (["sweep", "fixed_range.toml"], "histogram_buckets must be at least 1"),
    "sweep saxe with samples": (["sweep", "saxe_samples.toml"], "dataset 'saxe' has a fixed size"),
    "sweep infinite": (["sweep", "fixed_inf.toml"], "got inf"),
    "sweep grid not a list": (["sweep", "grid_not_list.toml"], "got 'relu'"),
    "sweep grid not a table": (["sweep", "grid_not_table.toml"],
                               "grid must be a table [grid], got 5"),
    "sweep grid wrong type": (["sweep", "grid_type.toml"], "got '0'"),
    "sweep grid unknown name": (["sweep", "grid_choice.toml"], "'rleu'"),
    "sweep zero configurations": (["sweep", "grid_empty_list.toml"],
                                  "seed must be a non-empty list, got []"),
    "sweep repeated value": (["sweep", "grid_repeated.toml"], "share the run folder"),
    "sweep field the name leaves out": (["sweep", "grid_unnamed_field.toml"],
                                        "share the run folder moons/linear-d4-w32-s0"),
    "sweep grid and fixed": (["sweep", "grid_and_fixed.toml"], "seed in both [grid] and [fixed]"),
    "sweep experiment ..": (["sweep", "experiment_up.toml"], "invalid experiment '..'"),
    "sweep experiment not text": (["sweep", "experiment_type.toml"], "got 5"),
    "sweep binary file": (["sweep", "binary.toml"], "binary.toml is not UTF-8 text"),
    "sweep unwritable logdir": (["sweep", "--logdir", "notes.txt/logs"], "'notes.txt/logs'"),
    "article zero jobs": (["article", "--jobs", "0"], "--jobs must be at least 1, got 0"),
    "article syntax error": (["article", "syntax.toml"], "at line 3"),
    "article negative seed": (["article", "--seeds", "-2"], "got -2"),
    "beyond zero jobs": (["beyond", "--jobs", "0"], "--jobs must be at least 1, got 0"),
    "beyond too many jobs": (["beyond", "--jobs", "65"], "--jobs must be at most 64, got 65"),
    "beyond unwritable logdir": (["beyond", "--logdir", "notes.txt/logs"], "'notes.txt/logs'"),
    "beyond unknown flag": (["beyond", "--seeds", "1"], "--seeds"),
    # plot and report: folders without completed runs
    "plot missing folder": (["plot", "missing"], "no such folder: missing"),
    "plot empty folder": (["plot", "empty"], "no completed runs in empty"),
    "plot file": (["plot", "notes.txt"], "not a folder: notes.txt"),
    "plot incomplete runs only": (["plot", "incomplete"], "no completed runs in incomplete"),
    "report missing folder": (["report", "missing"], "no such folder: missing"),
    "report empty folder": (["report", "empty"], "no completed runs in empty"),
    "report incomplete runs only": (["report", "incomplete"], "no completed runs in incomplete"),
    # compare
    "compare missing run": (["compare", "missing", "--out", "out"],
                            "no run folder matches 'missing'"),
    "compare glob matching nothing": (["compare", "exp/moons/*-s9", "--out", "out"],
                                      "no run folder matches 'exp/moons/*-s9'"),
    "compare empty folder": (["compare", "empty", "--out", "out"], "empty holds no run folder"),
    "compare run without events": (["compare", "incomplete", "--out", "out"],
                                   "no readable event files in train/ of incomplete/moons"),
    "compare tag glob matching nothing": (["compare", "exp", "--tags", "nothing/*", "--out", "out"],
                                          "no histogram tag matches 'nothing/*'"),
    "compare negative step": (["compare", "exp", "--steps", "0", "-1", "--out", "out"],
                              "steps must be at least 0, got -1"),
    "compare step not int": (["compare", "exp", "--steps", "last"], "'last'"),
    "compare out is a file": (["compare", "exp", "--out", "notes.txt"],
                              "figure folder notes.txt cannot be created: notes.txt is a file"),
    "compare out below a file": (["compare", "exp", "--out", "notes.txt/figures"],
                                 "figure folder notes.txt/figures cannot be created"),
    # tensorboard
    "tensorboard port 0": (["tensorboard", "logs", "--port", "0"], "got 0"),
    "tensorboard port 70000": (["tensorboard", "logs", "--port", "70000"], "got 70000"),
    "tensorboard port not int": (["tensorboard", "logs", "--port", "http"], "'http'"),
    "tensorboard empty host": (["tensorboard", "logs", "--host", ""], "got ''"),
    "tensorboard missing logdir": (["tensorboard", "logs"], "no such log folder: logs"),
    "unknown command": (["frobnicate"], "'frobnicate'"),
}
# Flags that write add a log root inside the case folder.
WRITING_COMMANDS = ("train", "sweep", "article", "beyond")


def write_files(root):
    for name, content in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.mkdir(exist_ok=True)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    write_gradient_run(root / RUN)


def write_gradient_run(run_dir):
    """A completed run whose `train/` events hold one gradient histogram."""
    (run_dir / runs.TRAIN_DIR).mkdir(parents=True)
    (run_dir / runs.CONFIG_FILE).write_text(TEST_CONFIG.replace(activation="relu").to_json())
    runs.write_marker(run_dir, runs.Marker(runs.RunStatus.COMPLETE, steps=1, epochs=1))
    summary = histogram_summary.histogram_pb("gradients/dense_1/kernel", [0.0, 1.0, 2.0])
    with open(run_dir / runs.TRAIN_DIR / "events.out.tfevents.0.test", "wb") as handle:
        writer = RecordWriter(handle)
        for step in (0, 1):
            writer.write(event_pb2.Event(wall_time=time.time(), step=step,
                                         summary=summary).SerializeToString())


def snapshot(root):
    """Every path under `root` with its size and modification time."""
    return {path: (path.stat().st_size, path.stat().st_mtime_ns) for path in root.rglob("*")}


@pytest.mark.parametrize("args, names", CASES.values(), ids=CASES.keys())
def test_bad_input_exits_2_names_the_value_and_writes_nothing(tmp_path, args, names):
    write_files(tmp_path)
    before = snapshot(tmp_path)
    if args[0] in WRITING_COMMANDS and "--logdir" not in args:
        args = [*args, "--logdir", "logs"]
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr
    assert names in errors[0]
    assert not (tmp_path / "logs").exists() and not (tmp_path / "out").exists()
    assert snapshot(tmp_path) == before


def test_empty_grid_is_one_run_of_the_fixed_values(tmp_path):
    path = tmp_path / "fixed_only.toml"
    path.write_text('experiment = "one"\n[grid]\n[fixed]\nactivation = "tanh"\n')
    (config,) = load_sweep(path).configs()
    assert (config.experiment, config.activation) == ("one", "tanh")
