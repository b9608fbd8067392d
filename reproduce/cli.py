"""The `reproduce` command line: argument parsing, and the one place that turns
library errors into one-line messages and exit status 2.

TensorFlow is imported only once the arguments are valid, so `--help` and bad
input answer at once and write nothing. The flags themselves are in `arguments`.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import warnings
from pathlib import Path

from reproduce.arguments import (
    DEFAULT_LOGDIR, add_config_arguments, add_experiment_dir_argument, add_logdir_argument,
    add_ray_arguments, add_sweep_arguments, config_from_args)
from reproduce.config import RunConfig, check_fits_in_memory
from reproduce.errors import ConfigError, ReproduceError
from reproduce.quiet import quiet_tensorflow
from reproduce.training.tf_config import read_tf_config

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C
MAX_JOBS = 64  # worker processes of a sweep, each with its own TensorFlow


def ray_from_args(args: argparse.Namespace):
    """The `RayOptions` the command line asks for, or None; checked before TensorFlow loads.

    Raises:
        ConfigError: a bad value, or Ray is not installed.
    """
    if args.ray is None:
        return None
    from reproduce.execution import ray_pool

    options = ray_pool.RayOptions(args.ray, args.ray_cpus, args.ray_gpus)
    ray_pool.require_ray()
    return options


def load_sweep_from_args(args: argparse.Namespace):
    from reproduce.execution.sweep_file import load_sweep

    check_jobs(args.jobs)
    sweep = load_sweep(args.sweep_file).with_grid(
        activation=args.activations, dataset=args.datasets, seed=args.seeds)
    given = {field: getattr(args, field) for field in ("strategy", "devices")
             if getattr(args, field) is not None}
    if given:
        sweep = dataclasses.replace(sweep, fixed={**sweep.fixed, **given})
    for config in sweep.configs():  # validates
        check_fits_in_memory(config)
    return sweep


def check_jobs(jobs: int | None) -> None:
    """Raises ConfigError unless `jobs` is None or in 1..MAX_JOBS."""
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    if jobs is not None and jobs > MAX_JOBS:
        raise ConfigError(f"--jobs must be at most {MAX_JOBS}, got {jobs}")


def is_multi_worker(args: argparse.Namespace) -> bool:
    """Whether the command runs as one worker of several (whose checks must run together).

    Raises:
        ConfigError: it does, and TF_CONFIG is malformed.
    """
    if getattr(args, "strategy", None) != "multi_worker":
        return False
    read_tf_config()
    return True


def add_command(commands, name: str, handler, help: str, usage: str, description: str = ""):
    """Adds the subcommand `name`, run by `handler(args, its_parser)`; returns its parser."""
    parser = commands.add_parser(name, help=help, usage=usage, description=description or None)
    parser.set_defaults(handler=handler, parser=parser)
    parser.add_argument("--verbose", action="store_true",
                        help="let TensorFlow print its start-up notices and warnings "
                             "(also when TF_CPP_MIN_LOG_LEVEL is set)")
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reproduce",
        description="Reproduce and test \"Why you shouldn't use a linear activation function\".",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sweep_usage = ("[SWEEP.toml] [--logdir DIR] [--activations A ...] [--datasets D ...] "
                   "[--seeds S ...] [--jobs N] [--strategy S] [--devices D] "
                   "[--ray ADDRESS [--ray-cpus N] [--ray-gpus N]]")

    train = add_command(commands, "train", run_train, "train one configuration",
                        "reproduce train [options]",
                        "Train one configuration and write its run folder.")
    add_config_arguments(train)
    add_logdir_argument(train)
    train.add_argument("--overwrite", action="store_true", help="replace a completed run")
    train.add_argument("--quiet", action="store_true", help="no per-epoch progress")

    add_sweep_arguments(add_command(
        commands, "sweep", run_sweep, "train every configuration of a sweep file, resumably",
        f"reproduce sweep {sweep_usage}",
        "Train every combination of a sweep file's [grid] (default: the article sweep), "
        "skipping completed runs."))
    add_sweep_arguments(add_command(
        commands, "article", run_article,
        "the article reproduction: sweep, figures, report (`make reproduce`)",
        f"reproduce article {sweep_usage}",
        "Run the article sweep (skipping completed runs), then write its figures and REPORT.md."))
    beyond = add_command(
        commands, "beyond", run_beyond,
        "beyond the article: Saxe et al.'s deep linear dynamics (C6) and Glorot & Bengio's "
        "saturation (C7) (`make beyond`)",
        "reproduce beyond [--logdir DIR] [--jobs N] [--ray ADDRESS]",
        "Run the two experiments beyond the article (skipping completed runs), each into "
        "<logdir>/<experiment> with its figures and REPORT.md.")
    add_logdir_argument(beyond)
    beyond.add_argument("--jobs", type=int, default=None,
                        help="parallel worker processes (default: one per core plus one)")
    add_ray_arguments(beyond)
    add_experiment_dir_argument(add_command(
        commands, "plot", run_plot,
        "loss-drop, overview and decision-boundary figures of an experiment",
        "reproduce plot [EXPERIMENT_DIR]",
        "Write the figures of an experiment from its run folders."))
    add_experiment_dir_argument(add_command(
        commands, "report", run_report, "the claim-by-claim report of an experiment",
        "reproduce report [EXPERIMENT_DIR]",
        "Write REPORT.md and report.json from an experiment's run folders."))

    compare = add_command(
        commands, "compare", run_compare, "compare logged gradient histograms across runs",
        "reproduce compare RUN [RUN ...] [--tags GLOB ...] [--steps STEP ...] [--json]",
        "Overlay the histograms of several runs layer by layer, and tabulate them.")
    compare.add_argument("runs", nargs="+", help="run folders or glob patterns")
    compare.add_argument("--tags", nargs="+", default=["gradients/*"],
                         help="histogram tag globs (default: gradients/*)")
    compare.add_argument("--steps", nargs="+", type=int, default=None,
                         help="steps to overlay (default: first, middle, last)")
    compare.add_argument("--out", type=Path, default=None,
                         help="figure folder (default: <first run's experiment>/compare)")
    compare.add_argument("--json", action="store_true", help="print the table as JSON")

    tensorboard = add_command(
        commands, "tensorboard", run_tensorboard,
        "start TensorBoard on 127.0.0.1 with nothing sampled away",
        "reproduce tensorboard [LOGDIR] [--port PORT] [--host HOST]")
    tensorboard.add_argument("logdir", nargs="?", type=Path, default=Path(DEFAULT_LOGDIR))
    tensorboard.add_argument("--port", type=int, default=6006, help="1-65535 (default: 6006)")
    tensorboard.add_argument("--host", default="127.0.0.1",
                             help="address to bind (default: 127.0.0.1, this machine only; "
                                  "TensorBoard has no login)")
    return parser


def run_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    config = _parse_config(args, parser)
    check_fits_in_memory(config)
    from reproduce.runs import check_not_busy, check_not_complete, check_writable, run_dir

    if not is_multi_worker(args):  # workers must fail together, after connecting
        check_writable(args.logdir)
        path = run_dir(config, args.logdir)
        check_not_complete(path, args.overwrite)
        check_not_busy(path)
    from reproduce.training.trainer import train

    result = train(config, args.logdir, overwrite=args.overwrite, verbose=0 if args.quiet else 2)
    print(f"{result.status}: {result.run_dir}")
    return 0


def run_sweep(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from reproduce.experiments.article import run_sweep as train_sweep
    from reproduce.runs import check_writable

    ray = ray_from_args(args)
    sweep = load_sweep_from_args(args)
    if not is_multi_worker(args):
        check_writable(args.logdir)
    summary = train_sweep(sweep, args.logdir, args.jobs, ray=ray)
    print(f"Logs: {summary.experiment_dir}\n"
          f"Open them with: reproduce tensorboard {summary.experiment_dir}")
    return 1 if summary.failed else 0


def run_article(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from reproduce.experiments.article import run_article as reproduce_article
    from reproduce.runs import check_writable

    ray = ray_from_args(args)
    sweep = load_sweep_from_args(args)
    if not is_multi_worker(args):
        check_writable(args.logdir)
    reproduce_article(args.logdir, args.jobs, sweep, ray=ray)
    return 0


def run_beyond(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from reproduce.experiments.beyond import beyond_sweeps, run_beyond as reproduce_beyond
    from reproduce.runs import check_writable

    ray = ray_from_args(args)
    check_jobs(args.jobs)
    sweeps = beyond_sweeps()
    for sweep in sweeps:
        for config in sweep.configs():
            check_fits_in_memory(config)
    check_writable(args.logdir)
    reproduce_beyond(args.logdir, args.jobs, sweeps, ray=ray)
    return 0


def check_completed_runs(experiment_dir: Path) -> None:
    """Fails fast, before TensorFlow loads, when `experiment_dir` holds no completed run."""
    from reproduce.runs import load_runs

    with warnings.catch_warnings():  # the command warns about each run it skips when it reads
        warnings.simplefilter("ignore")
        load_runs(experiment_dir)


def run_plot(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    check_completed_runs(args.experiment_dir)
    from reproduce.figures.article import plot_experiment
    from reproduce.figures.beyond import plot_beyond
    from reproduce.report import is_beyond

    plot = plot_beyond if is_beyond(args.experiment_dir) else plot_experiment
    for path in plot(args.experiment_dir):
        print(path)
    return 0


def run_report(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    check_completed_runs(args.experiment_dir)
    from reproduce.report import write_report

    for path in write_report(args.experiment_dir):
        print(path)
    return 0


def run_compare(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from reproduce.compare.comparison import compare_runs

    comparison = compare_runs(args.runs, tags=args.tags, steps=args.steps, out_dir=args.out)
    print(comparison.to_json() if args.json else comparison.format_table())
    return 0


def run_tensorboard(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from reproduce.tensorboard.launcher import launch

    return launch(args.logdir, port=args.port, host=args.host)


def _parse_config(args, parser) -> RunConfig:
    try:
        return config_from_args(args)
    except ConfigError as error:
        parser.error(str(error))


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet_tensorflow(args.verbose)
    try:
        return args.handler(args, args.parser)
    except ReproduceError as error:
        print(f"reproduce {args.command}: error: {error}", file=sys.stderr)
        return getattr(error, "exit_status", EXIT_USAGE)
    except OSError as error:  # the disk filled up or the log dir changed under a run
        where = f": {error.filename}" if error.filename else ""
        print(f"reproduce {args.command}: error: {error.strerror or error}{where}",
              file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt as interruption:
        print(interruption_message(args.command, interruption, argv), file=sys.stderr)
        return EXIT_INTERRUPTED


def interruption_message(command: str, interruption: KeyboardInterrupt, argv) -> str:
    """Says what Ctrl-C stopped, what was kept and how to go on."""
    unfinished = getattr(interruption, "unfinished", [])
    stopped = (f" during {', '.join(unfinished)} (its unfinished folder was removed)"
               if unfinished else "")
    again = "reproduce " + shlex.join(sys.argv[1:] if argv is None else map(str, argv))
    if command == "train":
        return (f"reproduce train: interrupted{stopped}. Train it again with: {again}")
    if command in ("sweep", "article", "beyond"):
        return (f"reproduce {command}: interrupted{stopped}; completed runs are kept. "
                f"Resume with: {again}")
    return f"reproduce {command}: interrupted"


if __name__ == "__main__":
    sys.exit(main())
