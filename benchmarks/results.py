"""The measurements of one run: rows of samples, by column.

A row is one number a scenario measures ("blob push, monolithic", MB/s). Its columns are
the registries — `portside`, `distribution` — or `machine` for the physical limits. Each
round adds one sample (or a few) per column; the run reports medians and the ratio
Portside / Distribution.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Row", "Results", "PORTSIDE", "DISTRIBUTION", "MACHINE"]

PORTSIDE = "portside"
DISTRIBUTION = "distribution"
MACHINE = "machine"


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    unit: str
    higher_is_better: bool = True


@dataclass
class Results:
    rows: dict[str, Row] = field(default_factory=dict)  # in the order scenarios declared them
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def declare(self, row: Row) -> None:
        self.rows.setdefault(row.key, row)
        self.samples.setdefault(row.key, {})

    def add(self, key: str, column: str, value: float) -> None:
        if key not in self.rows:
            raise KeyError(f"row {key!r} was not declared")
        self.samples[key].setdefault(column, []).append(value)

    def median(self, key: str, column: str) -> float | None:
        values = self.samples.get(key, {}).get(column)
        return statistics.median(values) if values else None

    def ratio(self, key: str) -> float | None:
        """Portside / Distribution, of the medians."""
        portside, distribution = self.median(key, PORTSIDE), self.median(key, DISTRIBUTION)
        if portside is None or not distribution:
            return None
        return portside / distribution

    def paired_ratios(self, key: str) -> list[float]:
        """Portside / Distribution sample by sample: the i-th sample of each was taken in the
        same round, back to back, so each ratio saw about the same machine. Their spread
        shows how far noise moved the ratio."""
        samples = self.samples.get(key, {})
        pairs = zip(samples.get(PORTSIDE, []), samples.get(DISTRIBUTION, []), strict=False)
        return [p / d for p, d in pairs if d]

    @classmethod
    def from_json(cls, rows: list[dict[str, Any]]) -> Results:
        results = cls()
        for row in rows:
            results.declare(Row(row["key"], row["label"], row["unit"], row["higher_is_better"]))
            for column, values in row["samples"].items():
                for value in values:
                    results.add(row["key"], column, value)
        return results
