"""Portside's benchmarks.

python -m benchmarks run [--quick] [--rounds N] [--only a,b] [--json FILE] [--markdown FILE]
python -m benchmarks profile --load manifest-tag [--seconds 20] [--out DIR] [--svg]
python -m benchmarks list
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from benchmarks.plan import FULL, QUICK
from benchmarks.profile import LOADS, profile
from benchmarks.report import as_json, markdown, text_table, verdicts
from benchmarks.results import Results
from benchmarks.runner import run, scenario_names


def _names(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = set(names) - set(scenario_names())
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown scenarios {sorted(unknown)}; known: {', '.join(scenario_names())}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the scenarios")
    runner = commands.add_parser("run", help="run the suite against Portside and Distribution")
    runner.add_argument("--quick", action="store_true", help="small sizes, short runs: a minute or two (CI)")
    runner.add_argument("--rounds", type=int, help="rounds of A/B alternation (default 5, quick 2)")
    runner.add_argument("--only", type=_names, help=f"comma-separated scenarios: {','.join(scenario_names())}")
    runner.add_argument("--json", type=Path, help="write every sample, medians, ratios and targets here")
    runner.add_argument("--markdown", type=Path, help="write the results table here")
    runner.add_argument("--workdir", type=Path, help="parent of the run's temporary directory (default: the system's)")
    reporter = commands.add_parser("report", help="print the tables of a run again from its JSON")
    reporter.add_argument("json_file", type=Path)
    reporter.add_argument("--markdown", type=Path, help="write the results table here")
    profiler = commands.add_parser("profile", help="py-spy samples of Portside under one load")
    profiler.add_argument("--load", choices=LOADS, required=True)
    profiler.add_argument("--seconds", type=int, default=20)
    profiler.add_argument("--out", type=Path, default=Path("profiles"), help="raw stacks (and --svg) go here")
    profiler.add_argument("--svg", action="store_true", help="also record a flame graph (a second run)")
    profiler.add_argument("--top", type=int, default=25)
    for command in (runner, profiler):
        command.add_argument(
            "--portside-workers", type=int, default=os.cpu_count() or 1, help="server processes (default: cores)"
        )
        command.add_argument(
            "--portside-src", type=Path, help="run Portside from this source tree (put on PYTHONPATH) instead of src/"
        )
    args = parser.parse_args(argv)
    if args.command == "list":
        print("\n".join(scenario_names()))
        return 0
    if args.command == "report":
        saved = json.loads(args.json_file.read_text())
        results = Results.from_json(saved["rows"])
        print(text_table(results))
        if args.markdown:
            args.markdown.write_text(markdown(results))
        return 0
    source = args.portside_src.resolve() if args.portside_src else None
    if args.command == "profile":
        spots = profile(args.load, args.seconds, args.out, args.portside_workers, source, args.svg)
        print(f"{spots.samples} busy samples under {args.load}")
        for title, shares in (
            ("self time by function", spots.by_function),
            ("self time by package", spots.by_package),
            ("by the deepest Portside frame on the stack", spots.by_portside_caller),
        ):
            print(f"\n   %   {title}")
            print("\n".join(f"{share:5.1f}   {name}" for name, share in shares[: args.top]))
        return 0
    plan = (QUICK if args.quick else FULL).with_rounds(args.rounds)
    names = args.only or scenario_names()
    results, meta = run(plan, names, args.portside_workers, source, args.workdir)
    meta["mode"] = "quick" if args.quick else "full"
    print(text_table(results))
    if args.json:
        args.json.write_text(as_json(results, meta) + "\n")
    if args.markdown:
        args.markdown.write_text(markdown(results))
    missed = [v for v in verdicts(results) if v.met is False]
    print(f"\ntargets: {len(verdicts(results)) - len(missed)} met, {len(missed)} not met", file=sys.stderr)
    print(f"load average as the rounds started: {meta['load_average']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
