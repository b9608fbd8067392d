"""The wheel, installed not editable in a venv of its own, trains a run and serves its tab.

The wheel is built offline (`pip wheel --no-build-isolation`) from a copy of the repository's
files, so that the working tree gets no build/ or egg-info and parallel workers do not collide.
The new venv sees this venv's site-packages through a plain path in a `.pth` file: TensorFlow
is not installed again, and the editable install's finder (a `.pth` import line, which a path
line does not run) stays out, so `reproduce` can come from the wheel only.
"""

import configparser
import contextlib
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
from conftest import PROCESS_TIMEOUT_S, cli_environment
from test_tensorboard import REQUEST_SECONDS, STARTUP_SECONDS, Server, running

from reproduce import runs, tensorboard
from reproduce.config import TEST_CONFIG
from reproduce.runs import events

# One worker builds, installs and serves: a second would only compete for the 2 cores.
pytestmark = pytest.mark.xdist_group("wheel")

REPOSITORY = Path(__file__).resolve().parent.parent
PACKAGES = ("reproduce", "callbacks")  # the top-level packages the wheel holds
PACKAGED_SUFFIXES = (".py", ".toml", ".js", ".css")  # modules, sweep files, the tab's frontend
CONFIG = TEST_CONFIG.replace(activation="relu")
# The fields `reproduce train` is given, each as its flag: TEST_CONFIG's tiny run.
TRAIN_FIELDS = ("experiment", "activation", "depth", "width", "batch_size", "epochs", "samples",
                "steps_per_execution", "probe_size")
SERVING = re.compile(r"TensorBoard \S+ at (http://\S+?)/? \(Press CTRL\+C to quit\)")
# Run in the new venv: where each thing it imports or finds by its metadata comes from.
WHERE_SCRIPT = """
import importlib.metadata as metadata, importlib.util, inspect, json, sys

def origin(module):
    spec = importlib.util.find_spec(module)
    return spec.origin if spec else None

found = {"modules": {name: origin(name) for name in sys.argv[1:]}}
if found["modules"]["reproduce"]:
    dist = metadata.distribution("linear-activation-repro")
    scripts = [entry for entry in metadata.entry_points(group="console_scripts")
               if entry.name == "reproduce"]
    plugins = [entry for entry in metadata.entry_points(group="tensorboard_plugins")
               if entry.dist.name == dist.name]
    found.update(
        distribution=str(dist.locate_file("")),
        scripts={entry.name: str(entry.dist.locate_file("")) for entry in scripts},
        plugins={entry.name: inspect.getfile(entry.load()) for entry in plugins},
        plugin_names=[entry.load().plugin_name for entry in plugins],
    )
print(json.dumps(found))
"""


def repository_files() -> list[str]:
    """The files git tracks or would track (untracked, not ignored) that exist: a commit's tree.

    Untracked files count because modules being moved are new files until committed.
    """
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPOSITORY, capture_output=True, text=True, check=True).stdout
    return sorted({name for name in listed.split("\0") if name and (REPOSITORY / name).is_file()})


def packaged_files() -> set[str]:
    """The repository files the wheel must hold: every module, sweep file and static file."""
    return {name for name in repository_files()
            if name.split("/", 1)[0] in PACKAGES and name.endswith(PACKAGED_SUFFIXES)}


def run(*command, cwd: Path) -> subprocess.CompletedProcess:
    """Runs `command` in `cwd` (outside the repository) without PYTHONPATH; checks it succeeds."""
    env = {name: value for name, value in cli_environment().items()
           if name not in ("PYTHONPATH", "PYTHONHOME")}
    result = subprocess.run(list(map(str, command)), cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=PROCESS_TIMEOUT_S)
    assert result.returncode == 0, f"{command}: {result.stderr[-3000:]}"
    return result


def make_venv(path: Path, cwd: Path) -> Path:
    """A venv without pip that sees this venv's site-packages; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True,
                   timeout=PROCESS_TIMEOUT_S)
    python = path / "bin" / "python"
    site_packages = run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                               cwd=cwd).stdout.strip()
    parents = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (Path(site_packages) / "parent_venv.pth").write_text("".join(f"{line}\n" for line in parents))
    return python


def where(python: Path, cwd: Path) -> dict:
    """WHERE_SCRIPT's answer in the venv of `python`."""
    return json.loads(run(python, "-c", WHERE_SCRIPT, *PACKAGES, "tensorflow",
                                 "tensorboard", cwd=cwd).stdout)


def inside(path: str, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> Path:
    """A working folder outside the repository, so that nothing is imported from its files."""
    return tmp_path_factory.mktemp("elsewhere")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory, outside) -> Path:
    """The wheel built from a copy of the repository's files."""
    source = tmp_path_factory.mktemp("source")
    for name in repository_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPOSITORY / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
        "--no-cache-dir", "--quiet", "-w", out, source, cwd=outside)
    [path] = out.glob("*.whl")
    return path


@pytest.fixture(scope="module")
def contents(wheel) -> dict[str, bytes]:
    """The wheel's files, name -> bytes."""
    with zipfile.ZipFile(wheel) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.fixture(scope="module")
def entry_points(contents) -> configparser.ConfigParser:
    """The dist-info's entry_points.txt."""
    [name] = [name for name in contents if name.endswith(".dist-info/entry_points.txt")]
    parser = configparser.ConfigParser(delimiters=("=",))
    parser.optionxform = str  # entry point names are case-sensitive
    parser.read_string(contents[name].decode())
    return parser


@pytest.fixture(scope="module")
def plugin_static(contents, entry_points) -> dict[str, bytes]:
    """The Histogram overlay plugin's static files in the wheel, file name -> bytes."""
    [(_, value)] = entry_points.items("tensorboard_plugins")
    package_dir = value.split(":")[0].rsplit(".", 1)[0].replace(".", "/")
    return {name.rsplit("/", 1)[1]: data for name, data in contents.items()
            if name.startswith(f"{package_dir}/static/") and name.endswith((".js", ".css"))}


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory, outside) -> Path:
    """A new venv with the wheel installed (not editable); returns the venv's folder."""
    path = tmp_path_factory.mktemp("venv")
    python = make_venv(path, outside)
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps",
               "--no-index", "--ignore-installed", "--quiet", wheel, cwd=outside)
    return path


@pytest.fixture(scope="module")
def trained(venv, tmp_path_factory, outside) -> Path:
    """The log root of one tiny `reproduce train` run by the new venv's console script."""
    logroot = tmp_path_factory.mktemp("logs")
    flags = [item for field in TRAIN_FIELDS
             for item in (f"--{field.replace('_', '-')}", getattr(CONFIG, field))]
    result = run(venv / "bin" / "reproduce", "train", *flags,
                        "--logdir", logroot, "--quiet", cwd=outside)
    assert result.stdout.strip().endswith(str(runs.run_dir(CONFIG, logroot))), result.stdout
    return logroot


def test_wheel_holds_every_module_sweep_and_static_file(contents):
    expected = packaged_files()
    assert any("/sweeps/" in name and name.endswith(".toml") for name in expected)
    assert sorted(expected - set(contents)) == []
    outside_packages = [name for name in contents if ".dist-info/" not in name
                        and name.split("/", 1)[0] not in PACKAGES]
    assert outside_packages == []


def test_wheel_declares_the_console_script_and_a_plugin_it_holds(contents, entry_points):
    assert entry_points.get("console_scripts", "reproduce") == "reproduce.cli:main"
    [(_, value)] = entry_points.items("tensorboard_plugins")
    module = value.split(":")[0].replace(".", "/")
    assert f"{module}.py" in contents or f"{module}/__init__.py" in contents


def test_plugin_static_files_include_its_script_and_style(plugin_static):
    assert any(name.endswith(".js") for name in plugin_static)
    assert any(name.endswith(".css") for name in plugin_static)


def test_site_packages_path_alone_does_not_bring_the_editable_package(tmp_path, outside):
    found = where(make_venv(tmp_path / "bare", outside), outside)["modules"]
    assert found["tensorflow"] and found["tensorboard"]  # from this venv
    assert {name: found[name] for name in PACKAGES} == dict.fromkeys(PACKAGES)


def test_new_venv_imports_and_finds_the_wheel_not_the_editable_install(venv, outside):
    found = where(venv / "bin" / "python", outside)
    assert all(inside(found["modules"][name], venv) for name in PACKAGES), found
    assert inside(found["distribution"], venv)
    assert list(found["scripts"]) == ["reproduce"] and inside(found["scripts"]["reproduce"], venv)
    assert found["plugins"] and all(inside(path, venv) for path in found["plugins"].values())
    assert (venv / "bin" / "reproduce").read_text().startswith(f"#!{venv / 'bin' / 'python'}")


def test_console_script_trains_a_complete_run(trained):
    run_dir = runs.run_dir(CONFIG, trained)
    assert runs.find_runs(trained) == [run_dir]
    for name in (runs.CONFIG_FILE, runs.MODEL_FILE, runs.INITIAL_WEIGHTS_FILE, runs.HISTORY_FILE,
                 runs.PROBE_FILE, runs.MARKER_FILE):
        assert (run_dir / name).is_file(), name
    assert events.event_files(run_dir / runs.TRAIN_DIR)
    assert events.event_files(run_dir / runs.VALIDATION_DIR)
    assert runs.load_config(run_dir) == CONFIG
    assert runs.read_marker(run_dir).status is runs.RunStatus.COMPLETE


@contextlib.contextmanager
def serving(venv: Path, logroot: Path, log_path: Path, cwd: Path):
    """Stock TensorBoard of the new venv on a port it picks; yields its Server and process."""
    command = [str(venv / "bin" / "python"), "-m", "tensorboard.main", "--logdir", str(logroot),
               "--host", tensorboard.DEFAULT_HOST, "--port", "0"]
    with contextlib.ExitStack() as stack:
        # `python -m` imports from its working folder first: start it outside the repository.
        with contextlib.chdir(cwd):
            process = stack.enter_context(running(command, log_path))
        deadline = time.monotonic() + STARTUP_SECONDS
        while not (url := SERVING.search(log_path.read_text())):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"TensorBoard did not start (exit status {process.poll()}):\n"
                            f"{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield Server(url.group(1)), process


def overlay(server: Server, route: str) -> dict | None:
    """The data route's answer for the default tag, None while no run is loaded."""
    try:
        tag = server.get(f"{route}/tags")["default"]
        return tag and server.get(f"{route}/data", tag=tag)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None  # not listening yet, or no run with the tag yet (400)


def logged_steps(run_dir: Path, tag: str) -> list[int]:
    """The steps of histogram `tag` in the run's training event files."""
    return runs.read_run_events(run_dir).train.histograms[tag].steps.tolist()


@pytest.fixture(scope="module")
def server(venv, trained, tmp_path_factory, outside):
    """TensorBoard of the new venv, once its tab serves every step of the trained run."""
    log_path = tmp_path_factory.mktemp("tensorboard") / "tensorboard.log"
    run_dir = runs.run_dir(CONFIG, trained)
    [name] = where(venv / "bin" / "python", outside)["plugin_names"]
    route = f"/data/plugin/{name}"
    with serving(venv, trained, log_path, outside) as (server, process):
        deadline = time.monotonic() + STARTUP_SECONDS
        while not ((answer := overlay(server, route))
                   and answer["steps"] == logged_steps(run_dir, answer["tag"])):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"TensorBoard did not serve every step of {run_dir}:\n"
                            f"{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield server, name


def test_tensorboard_lists_the_tab(server):
    server, name = server
    listing = server.get("/data/plugins_listing")[name]
    assert listing["enabled"] is True
    assert listing["loading_mechanism"]["module_path"].startswith(f"/data/plugin/{name}/static/")


def test_tensorboard_serves_the_tabs_static_files_from_the_wheel(server, plugin_static):
    server, name = server
    module_path = server.get("/data/plugins_listing")[name]["loading_mechanism"]["module_path"]
    folder, module = module_path.rsplit("/", 1)
    assert module in plugin_static
    for file_name, data in plugin_static.items():
        url = f"{server.base}{folder}/{file_name}"
        with urllib.request.urlopen(url, timeout=REQUEST_SECONDS) as response:
            kind = "text/css" if file_name.endswith(".css") else "text/javascript"
            assert response.headers.get_content_type() == kind, file_name
            assert response.read() == data, file_name


def test_tab_overlays_the_trained_run(server, trained):
    server, name = server
    answer = overlay(server, f"/data/plugin/{name}")
    run_dir = runs.run_dir(CONFIG, trained)
    [series] = answer["series"]
    assert series["run"] == f"{run_dir.relative_to(trained).as_posix()}/{runs.TRAIN_DIR}"
    assert series["step"] == logged_steps(run_dir, answer["tag"])[-1]
    assert sum(count for *_, count in series["buckets"]) > 0
