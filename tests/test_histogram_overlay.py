"""The Histogram overlay tab in a stock TensorBoard (`python -m tensorboard.main`), over HTTP
and in a real headless Chromium, on logs that none of our loggers wrote (the sigmoid run's
hparams written by TensorBoard's own hparams API, the others' by ours)."""

import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest
from conftest import TINY_FIXED, run_cli
from headless_chromium import Chromium
from test_compare import LAYERS, MEAN_ABS, NORM, SCALES, STD, STEPS, make_run
from test_tensorboard import REQUEST_SECONDS, STARTUP_SECONDS, Server, free_port, running

from reproduce import compare, runs, tensorboard
from reproduce.config import TEST_CONFIG
from reproduce.runs import events
from reproduce.tensorboard.histogram_overlay import grouping, plugin

# One worker runs them all: one TensorBoard and one log dir, not one per worker.
pytestmark = pytest.mark.xdist_group("histogram_overlay")

ROUTE = f"/data/plugin/{plugin.PLUGIN_NAME}"
TAG = "gradients/dense_1/kernel"
# activation -> (logged steps, per layer the gradient's scale at each step): test_compare's
# linear and relu runs, and a sigmoid run logging other steps.
WRITTEN = {"linear": (STEPS, SCALES["linear"]), "relu": (STEPS, SCALES["relu"]),
           "sigmoid": ((0, 5, 12), {"dense_1": (0.25, 0.05, 0.001), "output": (1.0, 1.0, 1.0)})}
# TensorBoard's run name -> (logged steps, scales), in sorted order.
RUNS = {f"{runs.run_dir(TEST_CONFIG.replace(activation=activation), '').as_posix()}/"
        f"{runs.TRAIN_DIR}": written for activation, written in WRITTEN.items()}
ALL_STEPS = [0, 5, 10, 12]
LAST_USED = [10, 10, 12]  # each run's logged step nearest the last one
# Keras's own TensorBoard callback: weight histograms, no norm scalars.
KERAS_RUN = "keras/train"
KERAS_LAYERS = ("dense", "dense_1", "dense_2")
KERAS_TAG = "sequential/dense/kernel/histogram"
BROWSER_SECONDS = 120  # for the tab to draw, TensorBoard's page included
# The panel hparam: the sigmoid run's hparams, written apart, say it trained on circles.
DATASETS = {"linear": "moons", "relu": "moons", "sigmoid": "circles"}
GROUPED = {"tag": TAG, "color": "activation", "panel": "dataset", "x": "symlog"}


def write_foreign_hparams(run_dir, activation) -> None:
    """The run's hparams as TensorBoard's hparams API writes them (e.g. its Keras callback)."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    with tf.summary.create_file_writer(str(run_dir)).as_default():
        hp.hparams({"activation": activation, "dataset": DATASETS[activation], "depth": 2})


def write_keras_run(logdir) -> None:
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(3, activation="relu"), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(np.ones((10, 2)), np.ones((10, 1)), epochs=2, verbose=0, callbacks=[
        keras.callbacks.TensorBoard(str(logdir / KERAS_RUN.split("/")[0]), histogram_freq=1)])


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    """RUNS written with plain `tf.summary` calls, and a run of Keras's TensorBoard callback."""
    logdir = tmp_path_factory.mktemp("logs")
    for activation, (steps, scales) in WRITTEN.items():
        run_dir = make_run(logdir, activation, steps, scales)
        if activation == "sigmoid":
            write_foreign_hparams(run_dir, activation)
        else:
            tensorboard.write_run_hparams(run_dir, TEST_CONFIG.replace(activation=activation))
    write_keras_run(logdir)
    return logdir


def get_error(server: Server, route: str, **query) -> tuple[int, str]:
    """The status and text of a request expected to fail."""
    url = f"{server.base}{route}?{urllib.parse.urlencode(query)}"
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(url, timeout=REQUEST_SECONDS)
    return raised.value.code, raised.value.read().decode()


def loaded(server: Server) -> bool:
    """Whether TensorBoard serves every step of every run yet."""
    try:
        gradients = server.get(f"{ROUTE}/data", tag=TAG)
        keras_run = server.get(f"{ROUTE}/data", tag=KERAS_TAG)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False  # not listening yet, or a run not loaded yet (400)
    return ([series["step"] for series in gradients["series"]] == LAST_USED
            and keras_run["steps"] == [0, 1])


@pytest.fixture(scope="module")
def server(logdir, tmp_path_factory):
    """Stock TensorBoard, no flag of ours, on a free loopback port; stopped whatever happens."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("tensorboard") / "tensorboard.log"
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir),
               "--host", tensorboard.DEFAULT_HOST, "--port", str(port)]
    with running(command, log_path) as process:
        server = Server(f"http://{tensorboard.DEFAULT_HOST}:{port}")
        deadline = time.monotonic() + STARTUP_SECONDS
        while not loaded(server):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"TensorBoard did not serve the runs (exit status "
                            f"{process.poll()}):\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield server


def test_stock_tensorboard_lists_the_tab_and_serves_its_module(server):
    listing = server.get("/data/plugins_listing")[plugin.PLUGIN_NAME]
    assert listing["enabled"] is True
    assert listing["tab_name"] == plugin.TAB_NAME
    assert listing["loading_mechanism"] == {"type": "IFRAME",
                                            "module_path": f"{ROUTE}/static/index.js"}
    for name, content_type in [("index.js", "text/javascript"), ("views.js", "text/javascript"),
                               ("style.css", "text/css")]:
        with urllib.request.urlopen(f"{server.base}{ROUTE}/static/{name}",
                                    timeout=REQUEST_SECONDS) as response:
            assert response.headers["Content-Type"].startswith(content_type)
            assert response.read() == (plugin.STATIC_DIR / name).read_bytes()
    assert get_error(server, f"{ROUTE}/static/..%2Fplugin.py")[0] == 404


def test_tags_are_sorted_with_the_first_gradient_tag_as_default(server):
    keras_tags = [f"sequential/{layer}/{kind}/histogram"
                  for layer in KERAS_LAYERS for kind in ("bias", "kernel")]
    assert server.get(f"{ROUTE}/tags") == {
        "tags": [f"gradients/{layer}/kernel" for layer in LAYERS] + keras_tags
        + [f"weights/{layer}/kernel" for layer in LAYERS],
        "default": TAG}
    assert server.get(f"{ROUTE}/tags", tags="^sequential/.*kernel") == {
        "tags": keras_tags[1::2], "default": keras_tags[1]}
    assert server.get(f"{ROUTE}/tags", tags="no such tag") == {"tags": [], "default": None}


def test_data_overlays_the_three_runs_at_the_last_step(server):
    answer = server.get(f"{ROUTE}/data", tag=TAG)
    assert answer["steps"] == ALL_STEPS and answer["step"] == ALL_STEPS[-1]
    assert [series["run"] for series in answer["series"]] == list(RUNS)
    assert [series["step"] for series in answer["series"]] == LAST_USED
    assert answer["layers"] == [f"gradients/{layer}/kernel" for layer in LAYERS]
    assert answer["layer_names"] == list(LAYERS)
    for series, (_, scales) in zip(answer["series"], RUNS.values()):
        scale = scales["dense_1"][-1]
        assert series["buckets"] == [[-3 * scale, 0, 2], [0, 3 * scale, 2]]
        assert series["mean_abs"] == pytest.approx(MEAN_ABS * scale, rel=1e-12)
        assert series["layers"]["std"] == pytest.approx(
            [MEAN_ABS * scales[layer][-1] for layer in LAYERS], rel=1e-12)


def test_table_is_what_reproduce_compare_computes(server, logdir):
    """One computation, two front ends: the tab's numbers are `reproduce compare`'s."""
    for index, step in enumerate(STEPS):
        answer = server.get(f"{ROUTE}/data", tag=TAG, step=step)
        comparison = compare.build_comparison(
            {logdir / run: events.read_events(logdir / run) for run in RUNS},
            tags=["gradients/*"], steps=[step])
        rows = {(row.tag, row.run): row for row in comparison.rows}
        for series, label, ratio in zip(answer["series"], comparison.labels, comparison.ratios):
            row = rows[TAG, label]
            expected = {"mean_abs": row.mean_abs[0], "std": row.std[0], "norm": row.norm_first,
                        "ratio": ratio.ratios[0]}
            assert {name: series[name] for name in expected} == expected
            assert series["cells"] == {name: compare.format_number(value)
                                       for name, value in expected.items()}
            assert series["layers"]["norm"] == [rows[layer, label].norm_first
                                                for layer in answer["layers"]]
        # ... and both are right: each ratio is dense_1's scale over output's.
        for series, (_, scales) in zip(answer["series"], RUNS.values()):
            assert series["ratio"] == pytest.approx(
                scales["dense_1"][index] / scales["output"][index], rel=1e-6)
            assert series["norm"] == pytest.approx(NORM * scales["dense_1"][index], rel=1e-6)
    assert answer["ratio_layers"] == "dense_1/kernel / output/kernel"


def symlog(values, linthresh):
    values = np.asarray(values, np.float64)
    return np.sign(values) * np.log10(1 + np.abs(values) / linthresh)


def test_runs_are_grouped_by_activation_and_paneled_by_dataset(server):
    answer = server.get(f"{ROUTE}/data", **GROUPED, agg="bands")
    assert answer["hparams"] == sorted(tensorboard.HPARAM_FIELDS)
    assert (answer["color"], answer["panel"], answer["x"], answer["agg"]) == (
        "activation", "dataset", "symlog", "bands")
    assert answer["groups"] == ["linear", "relu", "sigmoid"]
    assert [(series["group"], series["panel"]) for series in answer["series"]] == [
        (activation, DATASETS[activation]) for activation in WRITTEN]
    linear, relu, sigmoid = RUNS
    assert [(panel["name"], panel["runs"]) for panel in answer["panels"]] == [
        ("circles", [sigmoid]), ("moons", [linear, relu])]
    # The linear threshold: a tenth of the smallest mean |g| (sigmoid's, scale 0.001).
    linthresh = MEAN_ABS * 0.001 / 10
    assert answer["scale"] == {"kind": "symlog", "linthresh": pytest.approx(linthresh)}
    # A group of one run: its band is its own density, each bucket's half spread evenly
    # over the bucket on the symlog axis.
    (band,) = answer["panels"][0]["bands"]
    assert band["group"] == "sigmoid" and band["runs"] == [sigmoid]
    edges = np.asarray(band["edges"])
    end = symlog(3 * 0.001, linthresh)
    assert (edges[0], edges[-1]) == pytest.approx((-end, end))
    np.testing.assert_allclose(band["median"], 0.5 / end, rtol=1e-9)
    assert band["low"] == band["median"] == band["high"]
    moons = {band["group"]: band for band in answer["panels"][1]["bands"]}
    assert sorted(moons) == ["linear", "relu"]


def test_steps_view_gives_each_run_and_group_its_quantiles_at_every_step(server):
    answer = server.get(f"{ROUTE}/data", **GROUPED, view="steps")
    linthresh = answer["scale"]["linthresh"]
    for series, (steps, scales) in zip(answer["series"], RUNS.values()):
        assert series["quantiles"]["steps"] == list(steps)
        for row, scale in zip(series["quantiles"]["q"], scales["dense_1"]):
            # Half the count in [-3s, 0] and half in [0, 3s], spread evenly on the axis.
            end = symlog(3 * scale, linthresh)
            expected = [-end * 0.9, -end * 0.5, 0.0, end * 0.5, end * 0.9]
            np.testing.assert_allclose(row, expected, rtol=1e-9, atol=1e-12)
    bands = {band["group"]: band for panel in answer["panels"] for band in panel["steps"]}
    assert sorted(bands) == ["linear", "relu", "sigmoid"]
    for series in answer["series"]:
        band = bands[series["group"]]
        assert band["steps"] == series["quantiles"]["steps"]
        np.testing.assert_allclose(np.asarray(band["q"]).T, series["quantiles"]["q"])


def test_std_scale_shows_each_run_in_units_of_its_own_std(server):
    answer = server.get(f"{ROUTE}/data", tag=TAG, color="run", x="std", agg="runs")
    assert answer["groups"] == list(RUNS) and answer["x"] == "std"
    # Every run's buckets are [-3s, 0], [0, 3s] with std 1.5s: -2 to 2 whatever s.
    assert answer["panels"][0]["range"] == pytest.approx([-3 / STD, 3 / STD])


def test_auto_chooses_symlog_and_bands_by_what_the_runs_hold():
    assert grouping.choose_scale("auto", [0.015, 3.0, 0.0015]).kind == "symlog"
    assert grouping.choose_scale("auto", [0.5, 3.0, 1.5]).kind == "linear"
    assert grouping.choose_aggregate("auto", 75) == "bands"
    assert grouping.choose_aggregate("auto", 3) == "runs"
    assert plugin.default_tag(["gradients/dense_1/bias", "gradients/dense_1/kernel"]) == (
        "gradients/dense_1/kernel")


def test_each_run_uses_its_logged_step_nearest_the_chosen_one(server):
    linear, relu, sigmoid = RUNS
    answer = server.get(f"{ROUTE}/data", tag=TAG, step=11)
    assert answer["step"] == 11
    assert [series["step"] for series in answer["series"]] == [10, 10, 12]
    assert f"{sigmoid}: step 11 not logged, used step 12" in answer["notes"]
    answer = server.get(f"{ROUTE}/data", tag=TAG, runs="relu|sigmoid", step=10)
    assert [(series["run"], series["step"]) for series in answer["series"]] == [
        (relu, 10), (sigmoid, 12)]


def test_keras_weight_histograms_overlay_across_their_layers(server, logdir):
    answer = server.get(f"{ROUTE}/data", tag=KERAS_TAG)
    assert [series["run"] for series in answer["series"]] == [KERAS_RUN]
    assert answer["steps"] == [0, 1]
    assert answer["layer_names"] == list(KERAS_LAYERS)
    (series,) = answer["series"]
    read = events.read_events(logdir / KERAS_RUN).histograms
    assert series["buckets"] == read[KERAS_TAG].at(1).tolist()
    # No norm scalar is logged: the table says so as `reproduce compare` does.
    assert series["norm"] is None and series["cells"]["norm"] == series["cells"]["ratio"] == "-"
    assert series["layers"] == {
        "norm": [None] * len(KERAS_LAYERS),
        "std": [events.summarize_histogram(read[layer].at(1)).std for layer in answer["layers"]]}


@pytest.mark.parametrize("route, query, message", [
    ("data", {}, "tag is required"),
    ("data", {"tag": "gradients/nope"}, "no run has a histogram tag 'gradients/nope'"),
    ("data", {"tag": TAG, "runs": "(linear"}, "runs='(linear' is not a valid regular expression"),
    ("data", {"tag": TAG, "runs": "tanh"}, "runs='tanh' matches none of the 3 runs with tag"),
    ("data", {"tag": TAG, "step": "last"}, "step must be a whole number, got 'last'"),
    ("data", {"tag": TAG, "step": "13"},
     f"step 13 is outside the logged steps of '{TAG}': 0 to 12"),
    ("data", {"tag": TAG, "step": "-1"}, "step -1 is outside the logged steps"),
    ("tags", {"tags": "[a-"}, "tags='[a-' is not a valid regular expression"),
    ("data", {"tag": TAG, "x": "cubic"}, "x='cubic' is none of auto, linear, symlog, std"),
    ("data", {"tag": TAG, "view": "all"}, "view='all' is none of step, steps"),
    ("data", {"tag": TAG, "color": "flavour"},
     "color='flavour' is no hyperparameter of these runs; choose 'run' or one of: activation,"),
    ("data", {"tag": TAG, "panel": "temperature"}, "panel='temperature' is no hyperparameter"),
])
def test_bad_requests_are_400_with_a_message(server, route, query, message):
    code, text = get_error(server, f"{ROUTE}/{route}", **query)
    assert code == 400
    assert message in text


PROBE = """(() => {
  const frame = document.querySelector('iframe');
  const page = frame && frame.contentDocument;
  const state = page && page.body ? page.body.dataset.state : null;
  if (state !== 'ready' && state !== 'error') return null;
  const runs = (selector) => [...page.querySelectorAll(selector)].map((node) => node.dataset.run);
  return {
    state,
    message: page.querySelector('#message').textContent,
    hash: location.hash,
    tabs: document.body.textContent.includes('Histogram overlay'),
    overlay: [...page.querySelectorAll('svg.overlay path.series')].map((node) => ({
      run: node.dataset.run, group: node.dataset.group, step: node.dataset.step,
      drawn: node.getAttribute('d').length > 0,
      title: (node.querySelector('title') || node.parentNode.querySelector('title')).textContent,
      colour: node.getAttribute('stroke')})),
    panels: [...page.querySelectorAll('#overlay figure.panel')].map((node) => ({
      name: node.dataset.panel,
      groups: [...node.querySelectorAll('[data-group]')].map((item) => item.dataset.group)})),
    bands: [...page.querySelectorAll('svg.steps .steps-band')].map((node) => ({
      group: node.dataset.group, runs: node.dataset.runs,
      drawn: [...node.querySelectorAll('path')].every((path) => path.getAttribute('d'))})),
    layers: runs('svg.layers .layer-series'),
    legend: runs('#legend li'),
    legendGroups: [...page.querySelectorAll('#legend li')].map((node) => node.dataset.group),
    table: runs('#table tr[data-run]'),
  };
})()"""


def shown(browser: Chromium, page: str, condition=lambda shown: True) -> dict:
    """Waits until the tab has drawn or shown an error, and `condition` holds; returns what
    it shows."""
    deadline = time.monotonic() + BROWSER_SECONDS
    while (drawn := browser.evaluate(page, PROBE)) is None or not condition(drawn):
        if time.monotonic() > deadline:
            pytest.fail(f"the tab did not show what was expected within {BROWSER_SECONDS} s; "
                        f"it shows {drawn}")
        time.sleep(0.2)
    return drawn


def draw(browser: Chromium, url: str) -> tuple[str, dict]:
    """Opens `url` and waits until the tab has drawn or shown an error; returns the page and
    what it shows."""
    page = browser.open(url)
    return page, shown(browser, page)


def change(browser: Chromium, page: str, control: str, value: str) -> None:
    """Sets a control of the tab as a person would, and fires its change event."""
    browser.evaluate(page, f"""(() => {{
      const control = document.querySelector('iframe').contentDocument.querySelector({control!r});
      control.value = {value!r};
      control.dispatchEvent(new Event('change'));
    }})()""")


def test_browser_draws_one_series_per_run_and_keeps_the_view_in_the_url(server, tmp_path):
    with Chromium(tmp_path / "profile", tmp_path / "chromium.log") as browser:
        # The tab as a person opens it: the default tag, every run that has it, coloured by
        # activation (the runs log it as an hparam).
        page, drawn = draw(browser, f"{server.base}/#{plugin.PLUGIN_NAME}")
        screenshot = browser.screenshot(page, tmp_path / "histogram_overlay.png")
        assert drawn["state"] == "ready", drawn["message"]
        assert drawn["tabs"]
        assert [series["run"] for series in drawn["overlay"]] == list(RUNS)
        assert [series["group"] for series in drawn["overlay"]] == list(WRITTEN)
        assert len({series["colour"] for series in drawn["overlay"]}) == 3
        assert [series["step"] for series in drawn["overlay"]] == list(map(str, LAST_USED))
        assert all(series["drawn"] for series in drawn["overlay"])
        assert [series["title"] for series in drawn["overlay"]] == [
            f"{run} ({activation}, step {step})"
            for run, activation, step in zip(RUNS, WRITTEN, LAST_USED)]
        assert drawn["legendGroups"] == list(WRITTEN)
        assert drawn["layers"] == drawn["table"] == list(RUNS)
        # The controls redraw it, and the view is written into TensorBoard's URL ...
        change(browser, page, "#run-filter", "linear|sigmoid")
        change(browser, page, "#step", str(ALL_STEPS.index(5)))
        drawn = shown(browser, page, lambda drawn: len(drawn["overlay"]) == 2
                      and all(series["step"] == "5" for series in drawn["overlay"]))
        assert [series["run"] for series in drawn["overlay"]] == [list(RUNS)[0], list(RUNS)[2]]
        state = dict(part.split("=") for part in drawn["hash"].split("&")[1:])
        assert {key: urllib.parse.unquote(state[f"p.{plugin.PLUGIN_NAME}.{key}"])
                for key in ("tag", "runs", "step")} == {
                    "tag": TAG, "runs": "linear|sigmoid", "step": "5"}

        # ... and a URL naming a view opens it.
        view = {"tag": TAG, "runs": "relu|sigmoid", "step": "5", "logy": "1"}
        hash_state = "&".join(f"p.{plugin.PLUGIN_NAME}.{key}={urllib.parse.quote(value)}"
                              for key, value in view.items())
        _, drawn = draw(browser, f"{server.base}/#{plugin.PLUGIN_NAME}&{hash_state}")
        assert [(series["run"], series["step"]) for series in drawn["overlay"]] == [
            (run, "5") for run in list(RUNS)[1:]]

        # Grouped: one panel per dataset, series of one group per activation, a legend of
        # groups; then the view over steps, one band per group.
        grouped = "&".join(f"p.{plugin.PLUGIN_NAME}.{key}={value}" for key, value in (
            ("color", "activation"), ("panel", "dataset"), ("x", "symlog")))
        page, drawn = draw(browser, f"{server.base}/#{plugin.PLUGIN_NAME}&{grouped}")
        assert drawn["state"] == "ready", drawn["message"]
        assert [(panel["name"], panel["groups"]) for panel in drawn["panels"]] == [
            ("circles", ["sigmoid"]), ("moons", ["linear", "relu"])]
        assert sorted(series["group"] for series in drawn["overlay"]) == sorted(WRITTEN)
        assert drawn["legendGroups"] == list(WRITTEN)
        change(browser, page, "#view", "steps")
        drawn = shown(browser, page, lambda drawn: len(drawn["bands"]) == 3)
        assert [band["group"] for band in drawn["bands"]] == ["sigmoid", "linear", "relu"]
        assert [band["runs"] for band in drawn["bands"]] == [
            list(RUNS)[2], list(RUNS)[0], list(RUNS)[1]]
        assert all(band["drawn"] for band in drawn["bands"])
        state = dict(part.split("=") for part in drawn["hash"].split("&")[1:])
        assert {key: state[f"p.{plugin.PLUGIN_NAME}.{key}"]
                for key in ("color", "panel", "x", "view")} == {
                    "color": "activation", "panel": "dataset", "x": "symlog", "view": "steps"}
        browser.screenshot(page, tmp_path / "steps.png")

        # A bad request is a message in the tab, not a blank tab.
        _, drawn = draw(browser, f"{server.base}/#{plugin.PLUGIN_NAME}"
                                 f"&p.{plugin.PLUGIN_NAME}.runs=%28")
        assert drawn["state"] == "error"
        assert "runs='(' is not a valid regular expression" in drawn["message"]
        assert drawn["overlay"] == []
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 20_000  # a page with charts, not a blank one


# A real sweep, trained by `reproduce sweep`: 2 activations x 2 datasets.
REAL_SWEEP = """experiment = "grouped"
[grid]
activation = ["linear", "relu"]
dataset = ["moons", "circles"]
""" + TINY_FIXED


@pytest.fixture(scope="module")
def real_sweep_server(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("real")
    (logdir / "grouped.toml").write_text(REAL_SWEEP)
    result = run_cli("sweep", logdir / "grouped.toml", "--logdir", logdir, "--jobs", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    port = free_port()
    log_path = tmp_path_factory.mktemp("tensorboard") / "tensorboard.log"
    command = tensorboard.build_command(logdir, port=port)
    with running(command, log_path) as process:
        server = Server(f"http://{tensorboard.DEFAULT_HOST}:{port}")
        deadline = time.monotonic() + STARTUP_SECONDS
        while not real_sweep_loaded(server):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"TensorBoard did not serve the sweep:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield server


def real_sweep_loaded(server) -> bool:
    try:
        answer = server.get(f"{ROUTE}/data", tag=TAG, color="activation")
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False
    return len(answer["series"]) == 4 and len(answer["groups"]) == 2


def test_browser_groups_a_real_sweep_by_activation_in_panels_by_dataset(real_sweep_server,
                                                                       tmp_path):
    state = "&".join(f"p.{plugin.PLUGIN_NAME}.{key}={value}" for key, value in (
        ("color", "activation"), ("panel", "dataset"), ("x", "symlog")))
    with Chromium(tmp_path / "profile", tmp_path / "chromium.log") as browser:
        page, drawn = draw(browser, f"{real_sweep_server.base}/#{plugin.PLUGIN_NAME}&{state}")
        assert drawn["state"] == "ready", drawn["message"]
        assert [(panel["name"], sorted(set(panel["groups"]))) for panel in drawn["panels"]] == [
            ("circles", ["linear", "relu"]), ("moons", ["linear", "relu"])]
        assert sorted(series["group"] for series in drawn["overlay"]) == [
            "linear", "linear", "relu", "relu"]
        assert all(series["drawn"] for series in drawn["overlay"])
        assert drawn["legendGroups"] == ["linear", "relu"]
        change(browser, page, "#view", "steps")
        drawn = shown(browser, page, lambda drawn: len(drawn["bands"]) == 4)
        assert [band["group"] for band in drawn["bands"]] == ["linear", "relu"] * 2
        assert all(band["drawn"] for band in drawn["bands"])
