"""Sweep files: a TOML grid of configurations.

A sweep file has a top-level `experiment`, a `[grid]` table whose lists are
combined (every combination is one run) and a `[fixed]` table applied to
every run; all keys are `RunConfig` field names.
"""

from __future__ import annotations

import dataclasses
import itertools
import tomllib
from importlib import resources
from pathlib import Path

from reproduce import runs
from reproduce.config import RunConfig, field_names
from reproduce.errors import ConfigError

DEFAULT_SWEEP = "article.toml"
SWEEP_KEYS = ("experiment", "grid", "fixed")


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A grid of configurations."""

    experiment: str
    grid: dict[str, list]  # field -> values; every combination is one run
    fixed: dict  # field -> value shared by every run

    def configs(self) -> list[RunConfig]:
        """Returns one validated config per grid combination, in file order.

        Raises:
            ConfigError: a combination is not a valid `RunConfig`.
        """
        names = list(self.grid)
        configs = []
        for values in itertools.product(*(self.grid[name] for name in names)):
            fields = {**self.fixed, "experiment": self.experiment, **dict(zip(names, values))}
            try:
                configs.append(RunConfig.from_dict(fields))
            except ConfigError as error:
                raise ConfigError(f"sweep: {error}") from None
        if not configs:
            raise ConfigError("sweep: the grid gives no configuration (an empty list)")
        names = [runs.run_name(config) for config in configs]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ConfigError(f"sweep: several configurations share the run folder {repeated[0]} "
                              f"(a repeated grid value, or fields the folder name leaves out)")
        return configs

    def with_grid(self, **overrides) -> "Sweep":
        """Returns a copy whose grid entries are replaced by the non-empty `overrides`."""
        grid = dict(self.grid)
        grid.update({name: list(values) for name, values in overrides.items() if values})
        sweep = dataclasses.replace(self, grid=grid)
        sweep.configs()  # validates
        return sweep


def default_sweep_path():
    """The article sweep shipped inside the package (found by non-editable installs too)."""
    return resources.files("reproduce.sweeps").joinpath(DEFAULT_SWEEP)


def load_sweep(path=None) -> Sweep:
    """Reads a sweep file (the packaged article sweep when `path` is None).

    Raises:
        ConfigError: the file is missing, not TOML, or has unknown keys or bad values.
    """
    source = default_sweep_path() if path is None else Path(path)
    try:
        text = source.read_text()
    except OSError as error:
        raise ConfigError(f"cannot read sweep file {str(path)!r}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"sweep file {source} is not UTF-8 text (byte {error.start})") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # Python 3.11 gives no line for an error at the end ("at end of document").
        where = "" if " line " in str(error) else f" (line {len(text.splitlines()) or 1})"
        raise ConfigError(f"sweep file {source} is not valid TOML: {error}{where}") from None
    _check_keys(table, SWEEP_KEYS, "top level")
    grid, fixed = table.get("grid", {}), table.get("fixed", {})
    for name, value in (("grid", grid), ("fixed", fixed)):
        if not isinstance(value, dict):
            raise ConfigError(f"sweep file {source}: {name} must be a table [{name}], "
                              f"got {value!r}")
    _check_keys(grid, field_names(), "[grid]")
    _check_keys(fixed, field_names(), "[fixed]")
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"sweep file {source}: [grid] {name} must be a non-empty list, "
                              f"got {values!r}")
    both = sorted(set(grid) & set(fixed))
    if both:
        raise ConfigError(f"sweep file {source}: {', '.join(both)} in both [grid] and [fixed]")
    sweep = Sweep(table.get("experiment", RunConfig().experiment), grid, fixed)
    sweep.configs()
    return sweep


def _check_keys(table: dict, valid, where: str) -> None:
    unknown = sorted(set(table) - set(valid))
    if unknown:
        raise ConfigError(
            f"unknown sweep key(s) {', '.join(map(repr, unknown))} in {where}; "
            f"valid keys: {', '.join(valid)}"
        )
