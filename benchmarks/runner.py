"""One run: start the servers, set the data up, measure in rounds, stop everything.

In every round each scenario measures Portside and Distribution one after the other, and
the order flips from round to round (P D, then D P): a slow moment of the machine — other
work on it, a background flush — lands on both registries alike instead of on one, and
medians over the rounds drop what remains.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.context import Bench
from benchmarks.memory import PeakMemory
from benchmarks.payloads import Payloads
from benchmarks.plan import Plan
from benchmarks.results import DISTRIBUTION, PORTSIDE, Results
from benchmarks.scenarios import REGISTRIES, SCENARIOS, Scenario
from benchmarks.servers import Nginx, Registry, start_distribution, start_fronted_portside, start_portside, stop_all

__all__ = ["run", "scenario_names"]

REPO_ROOT = Path(__file__).resolve().parents[1]


def scenario_names() -> list[str]:
    return [scenario.name for scenario in SCENARIOS]


class _Progress:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.0f}s] {message}", file=sys.stderr, flush=True)


def run(
    plan: Plan,
    names: list[str],
    portside_workers: int,
    portside_source: Path | None = None,
    workdir: Path | None = None,
) -> tuple[Results, dict[str, Any]]:
    scenarios: list[Scenario] = [cls(plan) for cls in SCENARIOS if cls.name in names]
    results = Results()
    for scenario in scenarios:
        for row in scenario.rows():
            results.declare(row)
    modes = {mode for scenario in scenarios for mode in scenario.modes}
    if "memory" in names and not modes:
        modes.add("open")  # peak memory of servers that did nothing: their footprint at rest
    progress = _Progress()
    meta = _meta(plan, names, portside_workers, portside_source)
    registries: dict[tuple[str, str], Registry] = {}
    nginx: Nginx | None = None
    memory = PeakMemory().start()
    with tempfile.TemporaryDirectory(prefix="portside-bench-", dir=workdir) as tmp:
        root = Path(tmp)
        try:
            progress(f"writing the {plan.blob_bytes / 2**20:.0f} MiB blob under {root}")
            payloads = Payloads(root / "payloads", plan.blob_bytes)
            for mode in ("open", "auth"):
                if mode in modes:
                    progress(f"starting Portside ({portside_workers} workers) and Distribution, {mode}")
                    for registry in (
                        start_portside(root, mode, portside_workers, portside_source),
                        start_distribution(root, mode),
                    ):
                        registries[(registry.product, mode)] = registry
                        memory.watch(f"{registry.product}-{mode}", registry.pid)
            if "fronted" in modes:
                progress(f"starting Portside ({portside_workers} workers) behind nginx")
                registries[(PORTSIDE, "fronted")] = start_fronted_portside(root, portside_workers, portside_source)
            if "limits" in names:
                nginx = Nginx(payloads.root, root / "nginx").start()
            bench = Bench(plan, root, payloads, registries, nginx, memory)

            def peaks(after: str) -> None:
                """Which step raised a server's peak memory: the peaks after each step, in the JSON."""
                memory.sample()
                step = {f"{p}-{m}": round(memory.peak_mib(f"{p}-{m}"), 1) for p, m in registries if m != "fronted"}
                meta["memory_after_step"].append({"after": after, **step})

            peaks("start")
            for scenario in scenarios:
                for mode in scenario.modes:
                    for product in (p for p in REGISTRIES if (p, mode) in registries):
                        progress(f"setting up {scenario.name} on {product} ({mode})")
                        scenario.prepare(bench, bench.registry(product, mode))
                peaks(f"setting up {scenario.name}")
            for round_ in range(plan.rounds):
                # How busy the machine was: the 1-minute load average as each round starts.
                meta["load_average"].append(round(os.getloadavg()[0], 1))
                order = REGISTRIES if round_ % 2 == 0 else REGISTRIES[::-1]
                for scenario in scenarios:
                    columns = order if scenario.columns == REGISTRIES else scenario.columns
                    for column in columns:
                        progress(f"round {round_ + 1}/{plan.rounds}: {scenario.name} on {column}")
                        # Untimed: the disk finishes what the previous measurement left in the
                        # page cache. Distribution never fsyncs, so its 256 MiB pushes stay
                        # dirty for up to 30 s; without this, the kernel's writeback of them
                        # competed with the fsyncs of whichever server came next (Portside's
                        # pushes ran at 360-380 MB/s right after Distribution's, 435-530 before).
                        os.sync()
                        for key, value in scenario.measure(bench, column):
                            results.add(key, column, value)
                    if round_ == 0:
                        peaks(f"round 1: {scenario.name}")
            memory.stop()
            for scenario in scenarios:
                for key, column, value in scenario.finish(bench):
                    results.add(key, column, value)
            meta["processes"] = {f"{p}-{m}": memory.processes(f"{p}-{m}") for p, m in registries if m != "fronted"}
        finally:
            memory.stop()
            stop_all(list(registries.values()), nginx)
    meta["seconds"] = round(time.monotonic() - progress.started)
    progress("done")
    return results, meta


def _output(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (done.stdout + done.stderr).strip().splitlines()[0] if (done.stdout + done.stderr).strip() else "unknown"


def _machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
        os_release = dict(
            line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line
        )
    except OSError:
        mem_kib, os_release = 0, {}
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "os": os_release.get("PRETTY_NAME", "unknown").strip('"'),
        "python": platform.python_version(),
    }


def _meta(plan: Plan, names: list[str], workers: int, source: Path | None) -> dict[str, Any]:
    head = _output(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"])
    modified = _output(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "src"]) != "unknown"
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, "-m", "benchmarks", *sys.argv[1:]]),
        "scenarios": names,
        "plan": asdict(plan),
        "portside": {
            "workers": workers,
            "source": str(source) if source else str(REPO_ROOT / "src"),
            "repository_head": head,
            "working_tree_src_modified": modified if source is None else None,
        },
        "distribution": _output(["docker-registry", "--version"]),
        "nginx": _output(["nginx", "-v"]),
        "machine": _machine(),
        "columns": [PORTSIDE, DISTRIBUTION],
        "load_average": [],
        "memory_after_step": [],
    }
