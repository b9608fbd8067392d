"""`Run`, the one record of a run folder that the report, figures, comparison and
TensorBoard summaries read it through, and the readers of many runs at once.

Example:

```python
for run in load_runs("logs/article"):
    print(run.name, run.status, run.marker.final["val_accuracy"])
    model = run.load_model()
```
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from pathlib import Path

from reproduce.config import RunConfig
from reproduce.errors import ReproduceError, RunNotFoundError
from reproduce.runs import artifacts
from reproduce.runs.folders import (
    CONFIG_FILE, MARKER_FILE, TRAIN_DIR, VALIDATION_DIR, find_runs, group_name, run_name)
from reproduce.runs.marker import Marker, RunStatus, is_complete, read_marker


@dataclasses.dataclass(frozen=True)
class Run:
    """One run folder: its config and marker, read on first use, and loaders for the rest.

    Reading a damaged file raises the typed error naming it (`ConfigError`,
    `RunNotFoundError`) when the property or loader is used, so a reader can
    leave out only what it needed.
    """

    path: Path

    @functools.cached_property
    def config(self) -> RunConfig:
        return artifacts.load_config(self.path)

    @functools.cached_property
    def marker(self) -> Marker | None:
        """The completion marker; None when the run has not finished."""
        return read_marker(self.path) if is_complete(self.path) else None

    @property
    def status(self) -> RunStatus:
        return self.marker.status if self.marker is not None else RunStatus.INCOMPLETE

    @property
    def finished(self) -> bool:
        """Whether the run ended, completed or diverged."""
        return self.marker is not None

    @property
    def usable(self) -> bool:
        """Whether its figures count in statistics: completed, not diverged."""
        return self.status is RunStatus.COMPLETE

    @property
    def name(self) -> str:
        return run_name(self.config)

    @property
    def group(self) -> str:
        return group_name(self.config)

    @property
    def final(self) -> dict[str, float]:
        """The last epoch's metrics from the marker; empty when unfinished."""
        return dict(self.marker.final) if self.marker is not None else {}

    @functools.cached_property
    def events(self) -> RunEvents:
        """The run's `train/` and `validation/` events, kept once read."""
        return self.read_events()

    def read_events(self) -> RunEvents:
        """Reads the run's `train/` and `validation/` events afresh (`read_run_events`)."""
        return read_run_events(self.path)

    def __getstate__(self) -> dict:
        # Sent to worker processes without the events it may hold.
        return {key: value for key, value in self.__dict__.items() if key != "events"}

    def load_model(self, initial: bool = False):
        """See `artifacts.load_model`."""
        return artifacts.load_model(self.path, initial)

    def load_initial_weights(self, model) -> None:
        """See `artifacts.load_initial_weights`."""
        artifacts.load_initial_weights(model, self.path)

    def load_probe(self):
        """See `artifacts.load_probe`."""
        return artifacts.load_probe(self.path)

    def load_history(self) -> dict[str, list[float]]:
        """See `artifacts.load_history`."""
        return artifacts.load_history(self.path)

    def load_data(self, mnist_path=None):
        """The run's split regenerated from its config, checked against its fingerprint.

        Raises:
            DataError: the data cannot be built here.
            DataMismatchError: they differ from what the run trained on.
        """
        from reproduce import datasets

        expected = self.marker.data_sha256 if self.marker is not None else None
        return datasets.load_checked(self.config, expected, mnist_path)


def load_runs(root: str | Path, include_unfinished: bool = False) -> list[Run]:
    """The runs under `root` whose config and marker read, sorted by folder.

    A run whose config or marker does not read is left out with a warning
    naming the file; so, unless `include_unfinished`, is a run without marker.

    Raises:
        RunNotFoundError: `root` is not a folder, or holds no finished run.
    """
    found = []
    for path in find_runs(root):
        run = Run(path)
        try:
            run.config, run.marker  # noqa: B018 - read now, to leave out what does not read
        except ReproduceError as error:
            warnings.warn(f"skipping run {path}: {error}", stacklevel=2)
            continue
        if not (run.finished or include_unfinished):
            warnings.warn(f"skipping incomplete run {path} (no {MARKER_FILE} marker)",
                          stacklevel=2)
            continue
        found.append(run)
    if not any(run.finished for run in found):
        held = (f"{len(found)} run folder(s), none with a {MARKER_FILE} marker" if found
                else f"no run folder (one holding {CONFIG_FILE}) below it")
        raise RunNotFoundError(f"no completed runs in {root}: {held}; train some first, "
                               f"e.g. `make reproduce`")
    return found


@dataclasses.dataclass
class RunEvents:
    """The events of one run folder, as Keras's TensorBoard callback lays it out."""

    path: Path
    train: events.EventData
    validation: events.EventData


def read_run_events(run_dir: str | Path) -> RunEvents:
    """Reads the `train/` and `validation/` events of a run folder (`events.read_events`)."""
    from reproduce.runs import events  # TensorBoard's protos: only once events are read

    run_dir = Path(run_dir)
    return RunEvents(
        path=run_dir,
        train=events.read_events(run_dir / TRAIN_DIR),
        validation=events.read_events(run_dir / VALIDATION_DIR),
    )


def read_experiment(root: str | Path) -> dict[Path, RunEvents]:
    """Reads every run folder under `root` (or `root` itself if it is a run).

    Returns:
        Run folder -> its `RunEvents`, in sorted folder order.

    Raises:
        RunNotFoundError: `root` does not exist or holds no run folder.
    """
    run_dirs = find_runs(root)
    if not run_dirs:
        raise RunNotFoundError(f"no run folder (with {CONFIG_FILE}) under {root}")
    return {run_dir: read_run_events(run_dir) for run_dir in run_dirs}
