"""Portside's performance targets, each a ratio between numbers of the same run."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.results import MACHINE, PORTSIDE, Results

__all__ = ["Target", "TARGETS", "Verdict"]


@dataclass(frozen=True)
class Verdict:
    target: Target
    value: float | None  # the ratio achieved; None when a row was not measured
    met: bool | None


@dataclass(frozen=True)
class Target:
    """Portside's median on `row`, divided by Distribution's median on it — or, when
    `versus` names a machine row, by that row's median — must be at least `at_least`, or
    at most `at_most`."""

    row: str
    text: str
    at_least: float | None = None
    at_most: float | None = None
    versus: str | None = None

    def judge(self, results: Results) -> Verdict:
        if self.versus is None:
            value = results.ratio(self.row)
        else:
            portside, limit = results.median(self.row, PORTSIDE), results.median(self.versus, MACHINE)
            value = portside / limit if portside is not None and limit else None
        if value is None:
            return Verdict(self, None, None)
        met = (self.at_least is None or value >= self.at_least) and (self.at_most is None or value <= self.at_most)
        return Verdict(self, value, met)


TARGETS = (
    Target("manifest.tag", "≥ 10× Distribution", at_least=10),
    Target("manifest.digest", "≥ 10× Distribution", at_least=10),
    Target("head.blob", "≥ 10× Distribution", at_least=10),
    Target("pull.full", "≥ 1.0× Distribution", at_least=1.0),
    Target("pull.full", "≥ 90% of nginx sendfile", at_least=0.9, versus="limits.nginx"),
    Target("push.monolithic", "≥ 2× Distribution", at_least=2),
    Target("push.chunked", "≥ 2× Distribution", at_least=2),
    Target("concurrent.throughput", "≥ 2× Distribution", at_least=2),
    Target("small.images", "≥ 2× Distribution", at_least=2),
    Target("memory.open", "≤ 2× Distribution", at_most=2),
)
