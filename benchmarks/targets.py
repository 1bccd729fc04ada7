"""Portside's performance targets, each a ratio between numbers of the same run (or, for
what only Portside does, a bound on its own number), and the machine's own ceilings that
some rows are read against."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.results import DISTRIBUTION, MACHINE, PORTSIDE, Results

__all__ = ["Ceiling", "CEILINGS", "Share", "Target", "TARGETS", "Verdict"]


@dataclass(frozen=True)
class Verdict:
    target: Target
    value: float | None  # the ratio achieved; None when a row was not measured
    met: bool | None


@dataclass(frozen=True)
class Target:
    """Portside's median on `row`, divided by Distribution's median on it — or, when
    `versus` names a machine row, by that row's median; when `versus_distribution` names
    another row, by Distribution's median on that one; when `alone`, Portside's median
    itself, for what no other server here does — must be at least `at_least`, or at
    most `at_most`."""

    row: str
    text: str
    at_least: float | None = None
    at_most: float | None = None
    versus: str | None = None
    versus_distribution: str | None = None
    alone: bool = False

    def judge(self, results: Results) -> Verdict:
        if self.alone:
            value = results.median(self.row, PORTSIDE)
        elif self.versus_distribution is not None:
            portside = results.median(self.row, PORTSIDE)
            other = results.median(self.versus_distribution, DISTRIBUTION)
            value = portside / other if portside is not None and other else None
        elif self.versus is None:
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
    Target("direct.open", "≥ 1.0× Distribution", at_least=1.0),
    Target("direct.token", "≥ 1.0× Distribution", at_least=1.0),
    Target("fronted.full", "≥ 90% of nginx sendfile", at_least=0.9, versus="limits.nginx"),
    Target("fronted.full", "≥ 1.0× Distribution's pull", at_least=1.0, versus_distribution="pull.full"),
    Target(
        "fronted.concurrent",
        "≥ 2× Distribution's concurrent pulls",
        at_least=2,
        versus_distribution="concurrent.throughput",
    ),
    Target("push.monolithic", "≥ 2× Distribution", at_least=2),
    Target("push.chunked", "≥ 2× Distribution", at_least=2),
    Target("concurrent.throughput", "≥ 2× Distribution", at_least=2),
    Target("small.images", "≥ 2× Distribution", at_least=2),
    Target("memory.open", "≤ 2× Distribution", at_most=2),
    # The UI's: server time as the client on loopback sees it, the median of each round's p95.
    Target("ui.projects.p95", "p95 < 50 ms", at_most=50, alone=True),
    Target("ui.repository.p95", "p95 < 50 ms", at_most=50, alone=True),
    Target("ui.artifact.p95", "p95 < 50 ms", at_most=50, alone=True),
)


@dataclass(frozen=True)
class Share:
    ceiling: Ceiling
    limit: float  # the machine row's median
    portside: float | None  # each registry's median as a fraction of `limit`
    distribution: float | None


@dataclass(frozen=True)
class Ceiling:
    """What the machine itself reaches on the work of `row`: the median of machine row
    `limit`. A ratio between two registries that both come near it says little, so each
    registry's median is shown as a share of it beside the row."""

    row: str
    limit: str
    text: str

    def share(self, results: Results) -> Share | None:
        limit = results.median(self.limit, MACHINE)
        if not limit:
            return None
        portside, distribution = (results.median(self.row, column) for column in (PORTSIDE, DISTRIBUTION))
        return Share(
            self,
            limit,
            None if portside is None else portside / limit,
            None if distribution is None else distribution / limit,
        )


CEILINGS = (
    Ceiling("direct.open", "limits.nginx", "nginx sendfile, same client"),
    Ceiling("concurrent.throughput", "limits.nginx.concurrent", "nginx sendfile, same clients"),
)
