"""How figures read in the report: numbers to short strings, lists, Markdown tables."""

from __future__ import annotations

import math

import numpy as np


def fmt(value, digits: int = 3) -> str:
    """Formats a figure with `digits` significant digits; None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            return str(value)
        rounded = float(f"{value:.{digits}g}")
        if 10 ** (digits - 1) <= abs(rounded) < 1e6:
            return str(int(rounded))  # 6580, not 6.58e+03
        return f"{rounded:.{digits}g}"
    return str(value)


def names(values) -> str:
    """`a, b, c`: strings as they are, numbers through `fmt`."""
    return ", ".join(fmt(value) if not isinstance(value, str) else value for value in values)


def mean_std(values) -> str:
    """`mean ± std` of several values; one value alone."""
    if len(values) < 2:
        return fmt(values[0])
    return f"{fmt(float(np.mean(values)))} ± {fmt(float(np.std(values)), 2)}"


def markdown_table(rows: list[list]) -> list[str]:
    """The lines of a Markdown table; the first row is the header."""
    header, *body = rows
    cells = [[fmt(cell).replace("|", "\\|") for cell in row] for row in [header, *body]]
    return ([f"| {' | '.join(cells[0])} |", f"| {' | '.join('---' for _ in header)} |"]
            + [f"| {' | '.join(row)} |" for row in cells[1:]])
