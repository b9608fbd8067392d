"""The main job end to end, through the real command line: sweep -> figures -> report."""

import json

import matplotlib.image

from conftest import numbers_in, run_cli
from reproduce import runs

TINY_SWEEP = """
experiment = "tiny"
[grid]
activation = ["linear", "relu"]
dataset = ["moons"]
seed = [0]
[fixed]
depth = 2
width = 8
batch_size = 16
epochs = 6
samples = 80
steps_per_execution = 4
probe_size = 32
"""
VERDICTS = {"supported", "partially supported", "refuted", "insufficient data"}


def test_tiny_article_runs_end_to_end_in_parallel_and_resumes(tmp_path):
    sweep_file = tmp_path / "tiny.toml"
    sweep_file.write_text(TINY_SWEEP)
    logdir = tmp_path / "logs"
    result = run_cli("article", sweep_file, "--logdir", logdir, "--jobs", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    # Quiet: no line from TensorFlow's start-up in the sweep workers, the figures or the report.
    assert result.stderr == ""
    out = result.stdout
    # Start lines come from the worker processes, end lines from the sweep.
    assert "[1/2] moons/linear-d2-w8-s0-bs=16-ep=6-n=80  started" in out
    assert "[1/2] moons/linear-d2-w8-s0-bs=16-ep=6-n=80  val_acc=" in out
    assert "2 runs: 2 trained, 0 already complete, 0 failed" in out and "with 2 job(s)" in out
    experiment = logdir / "tiny"
    assert f"Report:  {experiment / 'REPORT.md'}" in out
    assert f"tensorboard --logdir {experiment} --host 127.0.0.1" in out

    pngs = sorted((experiment / "figures").rglob("*.png"))
    assert {path.name for path in pngs} >= {
        "linear-d2-w8-bs=16-ep=6-n=80.png", "relu-d2-w8-bs=16-ep=6-n=80.png", "overview.png",
        "overlay_moons.png", "boundary_moons.png"}
    for path in pngs:
        image = matplotlib.image.imread(path)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100

    report = json.loads((experiment / "report.json").read_text())
    claims = {claim["id"]: claim for claim in report["claims"]}
    assert sorted(claims) == ["C1", "C2", "C3", "C4", "C5"]
    for claim in claims.values():
        assert claim["verdict"] in VERDICTS and claim["rule"]
        assert all(value == value for value in numbers_in(claim["evidence"]))  # no NaN
    assert claims["C2"]["verdict"] == "supported"
    assert list(numbers_in(claims["C4"]["evidence"]))
    assert "## C3" in (experiment / "REPORT.md").read_text()

    assert (experiment / "hparams_config").is_dir() and (experiment / "custom_scalars").is_dir()
    markers = {path: (path / runs.MARKER_FILE).read_text()
               for path in (run.path for run in runs.load_runs(experiment))}
    again = run_cli("sweep", sweep_file, "--logdir", logdir, "--jobs", "2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("already complete, skipped") == 2
    assert markers == {path: (path / runs.MARKER_FILE).read_text() for path in markers}
