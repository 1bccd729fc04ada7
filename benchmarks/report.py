"""A run's results as a terminal table, a markdown table and JSON, with the targets judged
beside the measurements they are about, and the machine's ceiling beside the rows that
have one."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from benchmarks.results import DISTRIBUTION, MACHINE, PORTSIDE, Results, Row
from benchmarks.targets import CEILINGS, TARGETS, Share, Verdict

__all__ = ["verdicts", "shares", "text_table", "markdown", "as_json"]


def verdicts(results: Results) -> list[Verdict]:
    return [target.judge(results) for target in TARGETS if target.row in results.rows]


def shares(results: Results) -> list[Share]:
    """The ceilings measured in this run, for rows it measured."""
    found = (c.share(results) for c in CEILINGS if c.row in results.rows and c.limit in results.rows)
    return [share for share in found if share is not None]


def _number(value: float | None) -> str:
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _unit(row: Row) -> str:
    return row.unit if row.higher_is_better else f"{row.unit} (lower is better)"


def _judgement(verdict: Verdict) -> str:
    if verdict.met is None:
        return f"{verdict.target.text}: not measured"
    # A ratio to another row is not the one in the ratio column: it is shown with the target.
    other_row = verdict.target.versus is not None or verdict.target.versus_distribution is not None
    value = f" ({verdict.value:.2f})" if other_row and verdict.value is not None else ""
    return f"{verdict.target.text}{value}: {'met' if verdict.met else 'NOT met'}"


def _fraction(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _ceiling(share: Share, unit: str) -> str:
    return (
        f"ceiling ({share.ceiling.text}) {_number(share.limit)} {unit}: "
        f"P {_fraction(share.portside)}, D {_fraction(share.distribution)} of it"
    )


def _targets_by_row(results: Results) -> dict[str, str]:
    cells: dict[str, list[str]] = {}
    for verdict in verdicts(results):
        cells.setdefault(verdict.target.row, []).append(_judgement(verdict))
    for share in shares(results):
        cells.setdefault(share.ceiling.row, []).append(_ceiling(share, results.rows[share.ceiling.row].unit))
    return {row: "; ".join(texts) for row, texts in cells.items()}


def _registry_rows(results: Results) -> list[Row]:
    return [r for r in results.rows.values() if results.samples[r.key] and MACHINE not in results.samples[r.key]]


def _machine_rows(results: Results) -> list[Row]:
    return [r for r in results.rows.values() if MACHINE in results.samples[r.key]]


def _table(results: Results) -> tuple[list[str], list[list[str]], list[list[str]]]:
    targets = _targets_by_row(results)
    header = ["scenario", "unit", "Portside", "Distribution", "ratio P/D", "round by round", "target"]
    body = []
    for row in _registry_rows(results):
        ratio = results.ratio(row.key)
        paired = results.paired_ratios(row.key)
        body.append(
            [
                row.label,
                _unit(row),
                _number(results.median(row.key, PORTSIDE)),
                _number(results.median(row.key, DISTRIBUTION)),
                "–" if ratio is None else f"{ratio:.2f}",
                f"{min(paired):.2f}–{max(paired):.2f}" if len(paired) > 1 else "",
                targets.get(row.key, ""),
            ]
        )
    machine = [[row.label, _unit(row), _number(results.median(row.key, MACHINE))] for row in _machine_rows(results)]
    return header, body, machine


def text_table(results: Results) -> str:
    header, body, machine = _table(results)
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    numeric = {2, 3, 4, 5}

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i]) for i, cell in enumerate(cells)
        ).rstrip()

    out = [line(header), line(["-" * w for w in widths]), *map(line, body)]
    if machine:
        out += ["", "machine limits"]
        label_width = max(len(m[0]) for m in machine)
        out += [f"  {m[0].ljust(label_width)}  {m[2].rjust(10)} {m[1]}" for m in machine]
    return "\n".join(out)


def markdown(results: Results) -> str:
    header, body, machine = _table(results)
    out = ["| " + " | ".join(header) + " |", "|---|---|---:|---:|---:|---:|---|"]
    out += ["| " + " | ".join(cells) + " |" for cells in body]
    if machine:
        out += ["", "| machine limit | unit | measured |", "|---|---|---:|"]
        out += [f"| {m[0]} | {m[1]} | {m[2]} |" for m in machine]
    return "\n".join(out) + "\n"


def as_json(results: Results, meta: Mapping[str, Any]) -> str:
    rows = []
    for row in results.rows.values():
        samples = results.samples[row.key]
        rows.append(
            {
                **asdict(row),
                "samples": samples,
                "median": {column: results.median(row.key, column) for column in samples},
                "ratio": results.ratio(row.key),
                "paired_ratios": results.paired_ratios(row.key),
            }
        )
    targets = [
        {"row": v.target.row, "target": v.target.text, "value": v.value, "met": v.met} for v in verdicts(results)
    ]
    ceilings = [
        {
            "row": s.ceiling.row,
            "limit_row": s.ceiling.limit,
            "ceiling": s.ceiling.text,
            "limit": s.limit,
            "portside_share": s.portside,
            "distribution_share": s.distribution,
        }
        for s in shares(results)
    ]
    return json.dumps({"meta": dict(meta), "rows": rows, "targets": targets, "ceilings": ceilings}, indent=2)
