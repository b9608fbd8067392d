"""The completion marker `COMPLETE`: the one definition of how a run ended.

Written last by training, read by everyone else; its presence means the run finished.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from pathlib import Path

from reproduce.errors import RunNotFoundError
from reproduce.runs.folders import MARKER_FILE


class RunStatus(str, enum.Enum):
    """Where a run folder stands; the marker holds COMPLETE or DIVERGED."""

    COMPLETE = "complete"  # trained to the end
    DIVERGED = "diverged"  # stopped at a NaN or infinite loss; finished all the same
    INCOMPLETE = "incomplete"  # no marker: still training, crashed or killed

    def __str__(self) -> str:
        return self.value


STATUS_COMPLETE = RunStatus.COMPLETE.value
STATUS_DIVERGED = RunStatus.DIVERGED.value


def is_complete(path: str | Path) -> bool:
    """Whether the run in `path` finished (completed or diverged)."""
    return (Path(path) / MARKER_FILE).is_file()


@dataclasses.dataclass(frozen=True)
class Marker:
    """The completion marker `COMPLETE`: how a run ended. Only `status` is required."""

    status: RunStatus  # COMPLETE or DIVERGED
    steps: int | None = None  # optimizer steps taken
    epochs: int | None = None  # epochs run
    steps_per_epoch: int | None = None  # batches per training epoch
    wall_time_s: float | None = None  # seconds from start to the marker
    final: dict[str, float] = dataclasses.field(default_factory=dict)  # last epoch's metrics
    devices: list[str] = dataclasses.field(default_factory=list)  # the chief's devices
    replicas: int | None = None  # replicas in sync
    workers: int | None = None  # worker processes
    diverged_at_step: int | None = None  # first step with a non-finite batch loss
    data_sha256: str | None = None  # `datasets.fingerprint` of the split trained on

    @property
    def epoch_steps(self) -> float | None:
        """Optimizer steps per epoch: recorded, else steps / epochs; None when unknown."""
        if self.steps_per_epoch:
            return self.steps_per_epoch
        if self.steps is not None and self.epochs:
            return self.steps / self.epochs
        return None

    def to_dict(self) -> dict:
        """The marker as JSON-ready values; optional fields that are None are left out."""
        values = dataclasses.asdict(self)
        values["status"] = self.status.value
        return {key: value for key, value in values.items()
                if value is not None or key not in _OPTIONAL_MARKER_FIELDS}

    @classmethod
    def from_dict(cls, values, source: str = MARKER_FILE) -> "Marker":
        """Reads a marker's JSON object, checking each field's type.

        Raises:
            RunNotFoundError: not an object, no valid status, or a field of the
                wrong type; the message names `source`.
        """
        def fail(reason: str):
            raise RunNotFoundError(f"unreadable {source}: {reason}")

        if not isinstance(values, dict):
            fail("not a JSON object")
        fields = {field.name for field in dataclasses.fields(cls)}
        known = {key: value for key, value in values.items() if key in fields}
        if known.get("status") not in (STATUS_COMPLETE, STATUS_DIVERGED):
            fail(f"status must be {STATUS_COMPLETE!r} or {STATUS_DIVERGED!r}, "
                 f"got {known.get('status')!r}")
        known["status"] = RunStatus(known["status"])
        for key, kind in _MARKER_TYPES.items():
            if known.get(key) is not None and not has_type(known[key], kind):
                fail(f"{key} must be of type {kind.__name__}, got {known[key]!r}")
        final = known.get("final", {})
        if not (isinstance(final, dict)
                and all(has_type(value, float) for value in final.values())):
            fail(f"final must map metric names to numbers, got {final!r}")
        return cls(**known)


_OPTIONAL_MARKER_FIELDS = ("diverged_at_step", "data_sha256")
_MARKER_TYPES = {"steps": int, "epochs": int, "steps_per_epoch": int, "wall_time_s": float,
                 "replicas": int, "workers": int, "diverged_at_step": int, "data_sha256": str,
                 "devices": list}


def has_type(value, kind) -> bool:
    """Whether `value` is of JSON type `kind` (`float`: any number; a bool is neither)."""
    if isinstance(value, bool):
        return False
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


def read_marker(path: str | Path) -> Marker:
    """Returns the completion marker of the run in `path`.

    Raises:
        RunNotFoundError: the marker is missing, unreadable or malformed; the message names it.
    """
    marker = Path(path) / MARKER_FILE
    try:
        values = json.loads(marker.read_text())
    except (OSError, ValueError) as error:  # ValueError: bad JSON or not UTF-8
        raise RunNotFoundError(f"unreadable {marker}: {error}") from None
    return Marker.from_dict(values, str(marker))


def write_marker(path: str | Path, marker: Marker) -> None:
    """Writes the completion marker; call it after every other file is written.

    The marker appears whole or not at all (written aside, then renamed), so
    a run killed while writing it is simply incomplete.
    """
    partial = Path(path) / (MARKER_FILE + ".partial")
    partial.write_text(json.dumps(marker.to_dict(), indent=2, sort_keys=True) + "\n")
    os.replace(partial, Path(path) / MARKER_FILE)
