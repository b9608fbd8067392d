"""A real TensorBoard, started as `reproduce tensorboard` starts it, serves what the runs hold."""

import contextlib
import json
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest
from tensorboard.plugins.hparams import api_pb2

from callbacks.event_writer import EventWriter
from reproduce import compare, runs, tensorboard
from reproduce.config import TEST_CONFIG
from reproduce.errors import ConfigError, RunNotFoundError
from reproduce.runs import events

# Its module fixtures are built once: every test of the module on one xdist worker.
pytestmark = pytest.mark.xdist_group("tensorboard")

ACTIVATIONS = ("linear", "relu")
STARTUP_SECONDS = 180  # TensorBoard imports TensorFlow, slow on a busy CI machine
REQUEST_SECONDS = 30
# More than TensorBoard's default 1000 scalars per tag, so sampling would show.
LONG_SERIES = 1500
LONG_RUN = "sampling/long"


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """A log root with two trained runs, their hparams, the sweep summaries and a long series."""
    from reproduce.training.trainer import train

    logdir = tmp_path_factory.mktemp("logs")
    results = [train(TEST_CONFIG.replace(activation=activation), logdir, verbose=0)
               for activation in ACTIVATIONS]
    for result in results:
        tensorboard.write_run_hparams(result.run_dir, result.config,
                                      {"wall_time_s": result.wall_time})
    tensorboard.write_experiment_summaries(logdir / TEST_CONFIG.experiment,
                                           [result.config for result in results])
    long_run = EventWriter(logdir / LONG_RUN)
    long_run.write_scalar_series("value", range(LONG_SERIES), range(LONG_SERIES))
    long_run.close()
    return logdir, results


def run_name(logdir, path, sub_run=""):
    return str((path / sub_run).relative_to(logdir)) if sub_run else str(path.relative_to(logdir))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((tensorboard.DEFAULT_HOST, 0))
        return probe.getsockname()[1]


class Server:
    """HTTP access to a TensorBoard at `base`."""

    def __init__(self, base: str):
        self.base = base

    def get(self, route: str, **query):
        url = f"{self.base}{route}?{urllib.parse.urlencode(query)}"
        with urllib.request.urlopen(url, timeout=REQUEST_SECONDS) as response:
            return json.loads(response.read())

    def post(self, route: str, body: dict):
        request = urllib.request.Request(f"{self.base}{route}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=REQUEST_SECONDS) as response:
            return json.loads(response.read())


def wait_until_loaded(server: Server, process, log_path, expected: dict) -> None:
    """Polls until every (run, batch_loss count) in `expected` is served in full."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        if process.poll() is not None:
            pytest.fail(f"TensorBoard exited with {process.returncode}:\n"
                        f"{log_path.read_text()[-3000:]}")
        try:
            served = {run: len(server.get("/data/plugin/scalars/scalars", run=run, tag=tag))
                      for run, (tag, _) in expected.items()}
            if served == {run: count for run, (_, count) in expected.items()}:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # not listening yet, or the run not loaded yet (404)
        if time.monotonic() > deadline:
            pytest.fail(f"TensorBoard did not serve the runs within {STARTUP_SECONDS} s:\n"
                        f"{log_path.read_text()[-3000:]}")
        time.sleep(0.5)


@contextlib.contextmanager
def running(command: list[str], log_path):
    """A process started with `command`, output to `log_path`, stopped whatever happens."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def server(experiment, tmp_path_factory):
    """A TensorBoard process on a free loopback port, stopped whatever happens."""
    logdir, results = experiment
    port = free_port()
    log_path = tmp_path_factory.mktemp("tensorboard") / "tensorboard.log"
    with running(tensorboard.build_command(logdir, port=port), log_path) as process:
        server = Server(f"http://{tensorboard.DEFAULT_HOST}:{port}")
        expected = {run_name(logdir, result.run_dir, runs.TRAIN_DIR): ("batch_loss", result.steps)
                    for result in results}
        expected[LONG_RUN] = ("value", LONG_SERIES)
        wait_until_loaded(server, process, log_path, expected)
        yield server


def test_runs_are_served(server, experiment):
    logdir, results = experiment
    expected = {f"{TEST_CONFIG.experiment}/{tensorboard.HPARAMS_CONFIG_DIR}",
                f"{TEST_CONFIG.experiment}/{tensorboard.CUSTOM_SCALARS_DIR}", LONG_RUN}
    for result in results:
        expected |= {run_name(logdir, result.run_dir, sub_run)
                     for sub_run in ("", runs.TRAIN_DIR, runs.VALIDATION_DIR)}
    assert set(server.get("/data/runs")) == expected


def test_batch_loss_served_equals_what_events_reads(server, experiment):
    logdir, results = experiment
    for result in results:
        served = server.get("/data/plugin/scalars/scalars",
                            run=run_name(logdir, result.run_dir, runs.TRAIN_DIR), tag="batch_loss")
        read = runs.read_run_events(result.run_dir).train.scalars["batch_loss"]
        assert [step for _, step, _ in served] == read.steps.tolist() == list(
            range(1, result.steps + 1))
        assert [value for _, _, value in served] == read.values.tolist()


def test_nothing_is_sampled_away(server):
    served = server.get("/data/plugin/scalars/scalars", run=LONG_RUN, tag="value")
    assert [step for _, step, _ in served] == list(range(LONG_SERIES))


def test_gradient_histogram_served_equals_what_events_reads(server, experiment):
    logdir, results = experiment
    tag = "gradients/dense_1/kernel"
    for result in results:
        served = server.get("/data/plugin/histograms/histograms",
                            run=run_name(logdir, result.run_dir, runs.TRAIN_DIR), tag=tag)
        read = runs.read_run_events(result.run_dir).train.histograms[tag]
        assert [step for _, step, _ in served] == read.steps.tolist()
        for (_, _, buckets), expected in zip(served, read.buckets):
            np.testing.assert_array_equal(buckets, expected)


def test_hparams_sessions_hold_the_written_hparams_and_metrics(server, experiment):
    logdir, results = experiment
    request = {"experimentName": "", "startIndex": 0, "sliceSize": 100,
               "allowedStatuses": api_pb2.Status.keys()}
    groups = server.post("/data/plugin/hparams/session_groups", request)["sessionGroups"]
    sessions = {group["sessions"][0]["name"]: group for group in groups}
    assert set(sessions) == {run_name(logdir, result.run_dir) for result in results}
    for result in results:
        group = sessions[run_name(logdir, result.run_dir)]
        expected = {name: float(value) if isinstance(value, (int, float)) else value
                    for name, value in tensorboard.select_hparams(result.config).items()}
        assert group["hparams"] == expected
        metrics = {(value["name"]["group"], value["name"]["tag"]): value["value"]
                   for value in group["metricValues"]}
        validation = runs.read_run_events(result.run_dir).validation.scalars
        assert metrics == {
            ("validation", "epoch_loss"): validation["epoch_loss"].values[-1],
            ("validation", "epoch_accuracy"): validation["epoch_accuracy"].values[-1],
            ("", "wall_time_s"): pytest.approx(result.wall_time, rel=1e-6),  # float32
        }


def test_hparams_experiment_lists_domains_and_metrics(server):
    experiment = server.post("/data/plugin/hparams/experiment", {"experimentName": ""})
    domains = {info["name"]: info["domainDiscrete"] for info in experiment["hparamInfos"]}
    assert set(domains) == set(tensorboard.HPARAM_FIELDS)
    assert domains["activation"] == list(ACTIVATIONS)
    assert domains["depth"] == [TEST_CONFIG.depth]
    metrics = [(info["name"]["group"], info["name"]["tag"]) for info in experiment["metricInfos"]]
    assert metrics == [("validation", "epoch_loss"), ("validation", "epoch_accuracy"),
                       ("", "wall_time_s")]


def test_custom_scalars_layout_overlays_every_run(server, experiment):
    logdir, results = experiment
    (category,) = server.get("/data/plugin/custom_scalars/layout")["category"]
    charts = {chart["title"]: chart["multiline"]["tag"] for chart in category["chart"]}
    assert list(charts.values()) == [["^batch_loss$"], ["^epoch_loss$"], ["^epoch_accuracy$"],
                                     ["^gradient_norm/global$"]]
    for result in results:
        served = server.get("/data/plugin/custom_scalars/scalars",
                            run=run_name(logdir, result.run_dir, runs.TRAIN_DIR),
                            tag="^gradient_norm/global$")
        read = runs.read_run_events(result.run_dir).train.scalars["gradient_norm/global"]
        assert [value for _, _, value in served["tag_to_events"]["gradient_norm/global"]] == (
            read.values.tolist())


def test_histogram_overlay_tab_shows_what_reproduce_compare_computes(server, experiment):
    """Our loggers' runs in the tab of `reproduce tensorboard`: one computation, two front ends."""
    logdir, results = experiment
    assert server.get("/data/plugins_listing")["histogram_overlay"]["enabled"] is True
    tag = "gradients/dense_1/kernel"
    served = server.get("/data/plugin/histogram_overlay/data", tag=tag)
    comparison = compare.build_comparison(
        {result.run_dir: events.read_events(result.run_dir / runs.TRAIN_DIR)
         for result in results}, tags=["gradients/*"], steps=[served["step"]])
    assert served["layers"] == [tag for tag in comparison.tags if tag.endswith("/kernel")]
    assert [series["run"] for series in served["series"]] == [
        run_name(logdir, result.run_dir, runs.TRAIN_DIR) for result in results]
    rows = {(row.tag, row.run): row for row in comparison.rows}
    for series, label, ratio in zip(served["series"], comparison.labels, comparison.ratios):
        row = rows[tag, label]
        assert (series["step"], series["mean_abs"], series["std"], series["norm"]) == (
            row.steps[0], row.mean_abs[0], row.std[0], row.norm_first)
        assert series["ratio"] == ratio.ratios[0]
        assert series["layers"]["norm"] == [rows[layer, label].norm_first
                                            for layer in served["layers"]]


def test_rewriting_replaces_never_duplicates(tmp_path):
    config = TEST_CONFIG.replace(activation="tanh")
    run_dir = runs.run_dir(config, tmp_path)
    run_dir.mkdir(parents=True)
    (run_dir / runs.CONFIG_FILE).write_text(config.to_json())
    experiment_dir = tmp_path / config.experiment
    for wall_time in (1.0, 2.0):
        tensorboard.write_run_hparams(run_dir, config, {"wall_time_s": wall_time})
        tensorboard.write_experiment_summaries(experiment_dir, [config])
    assert [path.name for path in events.event_files(run_dir)] == [tensorboard.RUN_HPARAMS_FILE]
    run = events.read_events(run_dir)
    assert run.scalars["wall_time_s"].values.tolist() == [2.0]
    assert run.plugin_tags == {"hparams": {"_hparams_/session_start_info"}}
    assert run.event_count == 3  # file version, hparams, one metric
    for folder in (tensorboard.HPARAMS_CONFIG_DIR, tensorboard.CUSTOM_SCALARS_DIR):
        assert len(list((experiment_dir / folder).iterdir())) == 1
        assert events.read_events(experiment_dir / folder).event_count == 2


def test_write_run_hparams_rejects_bad_input(tmp_path):
    with pytest.raises(RunNotFoundError, match="no such run folder"):
        tensorboard.write_run_hparams(tmp_path / "missing", TEST_CONFIG)
    with pytest.raises(ConfigError, match="metric 'status' must be a finite number"):
        tensorboard.write_run_hparams(tmp_path, TEST_CONFIG, {"status": "complete"})


def test_launch_without_logdir_raises(tmp_path):
    with pytest.raises(RunNotFoundError, match="no such log folder"):
        tensorboard.launch(tmp_path / "missing")


def test_command_binds_loopback_and_keeps_every_sample():
    command = tensorboard.build_command("logs", port=7007)
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--port") + 1] == "7007"
    samples = dict(pair.split("=") for pair in
                   command[command.index("--samples_per_plugin") + 1].split(","))
    assert set(samples) == {"scalars", "histograms", "images"}
    assert min(map(int, samples.values())) >= 10**9
