import errno

import pytest

from conftest import run_cli
from reproduce import cli


def test_train_help_lists_choices():
    result = run_cli("train", "--help")
    assert result.returncode == 0
    assert "--activation" in result.stdout and "leaky_relu" in result.stdout
    assert "--overwrite" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--activation", "foo"], "invalid choice: 'foo'"),
        (["--dataset", "iris"], "invalid choice: 'iris'"),
        (["--depth", "0"], "depth must be at least 1, got 0"),
        (["--width", "0"], "width must be at least 1, got 0"),
        (["--learning-rate", "0"], "learning_rate must be a positive number, got 0"),
        (["--learning-rate", "-1"], "learning_rate must be a positive number, got -1"),
        (["--batch-size", "0"], "batch_size must be at least 1, got 0"),
        (["--epochs", "0"], "epochs must be at least 1, got 0"),
        (["--validation-fraction", "0"], "validation_fraction must be between 0 and 1"),
        (["--validation-fraction", "1.5"], "validation_fraction must be between 0 and 1"),
        (["--depth", "two"], "invalid int value: 'two'"),
    ],
)
def test_bad_input_exits_2_with_one_error_line_and_writes_nothing(tmp_path, args, message):
    result = run_cli("train", *args, "--logdir", tmp_path / "logs")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "logs").exists()


def test_unwritable_logdir_exits_2(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_cli("train", "--logdir", blocker / "logs")
    assert result.returncode == 2
    assert "is not writable" in result.stderr and "Traceback" not in result.stderr


def test_completed_run_is_refused_then_overwritten_on_request(tiny_run):
    logdir = tiny_run.run_dir.parents[2]
    flags = ["--experiment", "test", "--activation", "relu", "--depth", "2", "--width", "8",
             "--batch-size", "16", "--epochs", "2", "--samples", "80",
             "--steps-per-execution", "4", "--probe-size", "32", "--logdir", logdir]
    marker = (tiny_run.run_dir / "COMPLETE").read_text()
    refused = run_cli("train", *flags)
    assert refused.returncode == 2, refused.stderr
    assert "already complete; pass --overwrite" in refused.stderr
    assert (tiny_run.run_dir / "COMPLETE").read_text() == marker
    replaced = run_cli("train", *flags, "--overwrite", "--quiet")
    assert replaced.returncode == 0, replaced.stderr[-2000:]
    assert replaced.stdout.strip().endswith(str(tiny_run.run_dir))
    assert (tiny_run.run_dir / "COMPLETE").read_text() != marker


def test_disk_full_during_a_run_is_one_error_line(tmp_path, monkeypatch, capsys):
    import reproduce.training.trainer

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "model.keras"))

    monkeypatch.setattr(reproduce.training.trainer, "train", full_disk)
    assert cli.main(["train", "--logdir", str(tmp_path / "logs"), "--quiet"]) == 1
    assert capsys.readouterr().err == (
        f"reproduce train: error: No space left on device: {tmp_path / 'model.keras'}\n")
