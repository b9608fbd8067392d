"""How the runs of a sweep ended, one progress line per run, and the sweep's summary."""

from __future__ import annotations

import dataclasses
import enum
import time
from pathlib import Path

from reproduce import runs


class Outcome(str, enum.Enum):
    """How one run of a sweep ended."""

    COMPLETE = runs.STATUS_COMPLETE  # trained here
    DIVERGED = runs.STATUS_DIVERGED  # trained here, stopped at a NaN loss
    SKIPPED = "skipped"  # already complete when the sweep started
    BUSY = "busy"  # another process was training it; waited for at the end
    ELSEWHERE = "elsewhere"  # completed by another process meanwhile
    FAILED = "failed"


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """How one run of a sweep ended."""

    name: str
    status: Outcome
    seconds: float
    final: dict
    error: str = ""


@dataclasses.dataclass(frozen=True)
class SweepSummary:
    experiment_dir: Path
    outcomes: list[RunOutcome]
    seconds: float
    jobs: int
    chief: bool = True  # false on the other workers of a multi-worker sweep, which write nothing
    runner: str = ""  # where the jobs ran, when not in local worker processes

    @property
    def trained(self) -> list[RunOutcome]:
        return [outcome for outcome in self.outcomes
                if outcome.status in (Outcome.COMPLETE, Outcome.DIVERGED)]

    @property
    def failed(self) -> list[RunOutcome]:
        return self._with(Outcome.FAILED)

    def _with(self, status: Outcome) -> list[RunOutcome]:
        return [outcome for outcome in self.outcomes if outcome.status == status]

    def describe(self) -> str:
        trained = self.trained
        elsewhere = len(self._with(Outcome.ELSEWHERE))
        line = (f"{len(self.outcomes)} runs: {len(trained)} trained, "
                f"{len(self._with(Outcome.SKIPPED))} already complete, "
                + (f"{elsewhere} completed by another process, " if elsewhere else "")
                + f"{len(self.failed)} failed, in {format_duration(self.seconds)} with "
                f"{self.jobs} job(s)" + (f" on {self.runner}" if self.runner else ""))
        if trained:
            mean = sum(outcome.seconds for outcome in trained) / len(trained)
            line += (f"; {mean:.1f} s per run in its worker, "
                     f"{self.seconds / len(trained):.1f} s per run of wall time")
        return line


def format_duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class Progress:
    """One line per run as it starts and ends, with an ETA from the finished runs' pace."""

    def __init__(self, total: int, start: float):
        self.total = total
        self.start_time = start
        self.pending = 0
        self.finished = 0

    def position(self, index: int) -> str:
        return f"[{index}/{self.total}]"

    def report(self, index: int, outcome: RunOutcome) -> None:
        prefix = f"{self.position(index)} {outcome.name}"
        if outcome.status == Outcome.SKIPPED:
            print(f"{prefix}  already complete, skipped", flush=True)
            return
        if outcome.status == Outcome.BUSY:
            print(f"{prefix}  in progress in another process, skipped for now", flush=True)
            return
        self.finished += 1
        elapsed = time.perf_counter() - self.start_time
        remaining = self.pending - self.finished
        eta = f"  ETA {format_duration(elapsed / self.finished * remaining)}" if remaining else ""
        if outcome.status == Outcome.ELSEWHERE:
            print(f"{prefix}  completed by another process{eta}", flush=True)
            return
        if outcome.status == Outcome.FAILED:
            detail = f"FAILED: {outcome.error}"
        else:
            if "val_accuracy" in outcome.final or "val_loss" not in outcome.final:
                detail = f"val_acc={outcome.final.get('val_accuracy', float('nan')):.3f}"
            else:  # a regression (the `saxe` set) has no accuracy
                detail = f"val_loss={outcome.final['val_loss']:.3g}"
            if outcome.status == Outcome.DIVERGED:
                detail += "  DIVERGED (NaN loss)"
        print(f"{prefix}  {detail}  {outcome.seconds:.1f}s{eta}", flush=True)
