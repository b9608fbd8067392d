"""What the claims read: the experiment's runs, their regenerated data, shared analyses.

`Context` is handed to every claim module. It reads each run once (through
`runs.Run`), regenerates each data split once and checks it against the
fingerprint the run recorded, and computes on first use what several claims
share: the linear runs' measurements (C3, C4), the accuracy table (C5), the
runs missing from the grid.
"""

from __future__ import annotations

import functools
import itertools
import warnings
from pathlib import Path

import numpy as np

from callbacks import tags
from reproduce import datasets, runs
from reproduce.config import ACTIVATIONS, DATASETS, RunConfig
from reproduce.errors import DataError, DataMismatchError, RunNotFoundError
from reproduce.report.evidence import LINEAR, LOGISTIC_REGRESSION, Accuracy, LinearRun

LOGREG_MAX_ITER = 5000  # scikit-learn's LogisticRegression, the linear baseline of C4 and C5


class DataCache:
    """Regenerated splits and logistic-regression fits, shared by runs on the same split.

    Each run's split is checked against the fingerprint in its marker; a run
    whose data differ is named in a warning and gets no data.
    """

    def __init__(self):
        self._splits = {}
        self._fingerprints = {}
        self._logreg = {}
        self.problems: dict[str, str] = {}  # run name -> why it has no data

    @staticmethod
    def _key(config: RunConfig):
        return (config.dataset, config.seed, config.samples, config.noise,
                config.validation_fraction)

    def split(self, run: runs.Run) -> datasets.Dataset | None:
        """The run's train/validation split, or None when it cannot be regenerated as trained."""
        key = self._key(run.config)
        if key not in self._splits:
            try:
                self._splits[key] = datasets.load_dataset(run.config)
            except DataError:
                self._splits[key] = None
            else:
                self._fingerprints[key] = datasets.fingerprint(self._splits[key])
        split = self._splits[key]
        if split is None:
            self.problems[run.name] = "data could not be regenerated here"
            return None
        expected = run.marker.data_sha256 if run.marker is not None else None
        try:
            datasets.check_fingerprint(run.config, self._fingerprints[key], expected)
        except DataMismatchError as error:
            if run.name not in self.problems:
                warnings.warn(f"leaving the data-dependent checks of run {run.path} out: "
                              f"{error}", stacklevel=2)
            self.problems[run.name] = "regenerated data differ from the data trained on"
            return None
        return split

    def logistic_accuracy(self, run: runs.Run) -> float | None:
        """Logistic regression's validation accuracy on the run's split; None without data."""
        split = self.split(run)
        if split is None:
            return None
        key = self._key(run.config)
        if key not in self._logreg:
            from sklearn.linear_model import LogisticRegression
            from threadpoolctl import threadpool_limits

            # One thread: beside TensorFlow's pools, BLAS threads make the fit ~40x slower.
            with threadpool_limits(1):
                self._logreg[key] = LogisticRegression(max_iter=LOGREG_MAX_ITER).fit(
                    split.x_train, split.y_train.reshape(-1))
        return float(self._logreg[key].score(split.x_val, split.y_val.reshape(-1)))


class Context:
    """An experiment's runs as the claims see them.

    Args:
        experiment_dir: the experiment folder.
        all_runs: every run folder under it, finished or not.
    """

    def __init__(self, experiment_dir: Path, all_runs: list[runs.Run]):
        self.experiment_dir = Path(experiment_dir)
        self.all_runs = all_runs
        self.usable = [run for run in all_runs if run.usable]  # completed, not diverged
        self.data = DataCache()
        self._val_accuracy: dict[Path, float | None] = {}

    @classmethod
    def load(cls, experiment_dir: str | Path) -> "Context":
        """Reads every run folder under `experiment_dir`.

        Raises:
            RunNotFoundError: the folder is missing or holds no completed run.
        """
        return cls(Path(experiment_dir), runs.load_runs(experiment_dir, include_unfinished=True))

    def val_accuracy(self, run: runs.Run) -> float | None:
        """The last epoch's validation accuracy (history.json, else the marker)."""
        if run.path not in self._val_accuracy:
            try:
                values = run.load_history().get("val_accuracy") or []
            except RunNotFoundError as error:
                warnings.warn(f"ignoring {error}", stacklevel=2)
                values = []
            value = values[-1] if values else run.final.get("val_accuracy")
            self._val_accuracy[run.path] = None if value is None else float(value)
        return self._val_accuracy[run.path]

    @staticmethod
    def batch_losses(run: runs.Run) -> np.ndarray | None:
        """The run's loss at every optimizer step, or None when it logged none."""
        scalars = run.events.train.scalars.get(tags.BATCH_LOSS)
        return None if scalars is None else scalars.values

    def measure(self) -> None:
        """Computes now the measurements several claims share, the costly part of a report.

        For a process with time to spare before the report is written (while
        the figures are drawn elsewhere).
        """
        for measurements in ("linear_runs", "mode_runs", "saturation_runs", "accuracy"):
            getattr(self, measurements)

    @functools.cached_property
    def linear_runs(self) -> list[LinearRun]:
        """C3's and C4's measurements of every usable linear-activation run."""
        from reproduce.report.linear_runs import analyse_linear_run

        return [analyse_linear_run(run, self) for run in self.usable
                if run.config.activation == LINEAR]

    @functools.cached_property
    def mode_runs(self) -> dict[str, object]:
        """C6's measurements of every usable `saxe` run: run name -> `ModeRun`, or a note."""
        from reproduce.report.mode_dynamics import analyse_mode_run

        return {run.name: analyse_mode_run(run, self) for run in self.usable
                if run.config.dataset == "saxe"}

    @functools.cached_property
    def saturation_runs(self) -> dict[str, object]:
        """C7's measurements of every usable deep-sigmoid-family run: name -> `SaturationRun`."""
        from reproduce.report.saturation import SATURATING, analyse_saturation_run

        return {run.name: analyse_saturation_run(run) for run in self.usable
                if run.config.activation in SATURATING}

    @functools.cached_property
    def accuracy(self) -> list[Accuracy]:
        """Validation accuracy per dataset and model (activation or logistic regression)."""
        cells: dict[tuple[str, str], dict[int, float]] = {}
        for run in self.usable:
            if self.val_accuracy(run) is not None:
                cells.setdefault((run.config.dataset, run.config.activation), {})[
                    run.config.seed] = self.val_accuracy(run)
            accuracy = self.data.logistic_accuracy(run)
            if accuracy is not None:
                cells.setdefault((run.config.dataset, LOGISTIC_REGRESSION), {})[
                    run.config.seed] = accuracy
        rows = []
        model_order = (*ACTIVATIONS, LOGISTIC_REGRESSION)
        for (dataset, model), by_seed in sorted(
                cells.items(), key=lambda item: (DATASETS.index(item[0][0]),
                                                 model_order.index(item[0][1]))):
            values = [by_seed[seed] for seed in sorted(by_seed)]
            rows.append(Accuracy(dataset=dataset, model=model, mean=float(np.mean(values)),
                                 std=float(np.std(values)), n=len(values),
                                 seeds=sorted(by_seed), values=values))
        return rows

    @functools.cached_property
    def missing(self) -> list[str]:
        """Run names of the grid datasets x activations x seeds that no usable run fills.

        The grid is spanned by the values seen in any run folder, for each
        combination of the other settings (depth, width, ...).
        """
        present = {run.name for run in self.usable}
        values = {field: sorted({getattr(run.config, field) for run in self.all_runs},
                                key=sort_key(field))
                  for field in ("dataset", "activation", "seed")}
        bases = {run.config.replace(dataset=DATASETS[0], activation=LINEAR, seed=0)
                 for run in self.all_runs}
        expected = [
            runs.run_name(base.replace(dataset=dataset, activation=activation, seed=seed))
            for base in sorted(bases, key=runs.run_name)
            for dataset, activation, seed in itertools.product(
                values["dataset"], values["activation"], values["seed"])
        ]
        return [name for name in expected if name not in present]

    def describe_sweep(self) -> dict:
        """The values each setting takes across the runs, for the introduction."""
        described = {}
        for field in ("dataset", "activation", "seed", "depth", "width", "initializer",
                      "optimizer", "learning_rate", "batch_size", "epochs"):
            described[field] = sorted({getattr(run.config, field) for run in self.all_runs},
                                      key=sort_key(field))
        counts = {status.value: sum(run.status is status for run in self.all_runs)
                  for status in runs.RunStatus}
        return {"values": described, "runs": len(self.all_runs), **counts}


def sort_key(field: str):
    """Datasets and activations in the order the config lists them; other values sorted."""
    order = {"dataset": DATASETS, "activation": ACTIVATIONS}.get(field)
    return (lambda value: order.index(value)) if order else (lambda value: value)


def group_runs(selected: list[runs.Run]) -> dict[str, list[runs.Run]]:
    """The runs by configuration (`runs.group_name`), in dataset and activation order."""
    def order(run: runs.Run):
        return (DATASETS.index(run.config.dataset), ACTIVATIONS.index(run.config.activation),
                run.name)

    groups: dict[str, list[runs.Run]] = {}
    for run in sorted(selected, key=order):
        groups.setdefault(run.group, []).append(run)
    return groups
