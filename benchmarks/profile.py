"""Where Portside spends its time under one kind of load: py-spy samples the server's
processes while wrk or ab drives it, and the samples are summed per function, per package,
and per deepest Portside frame (which of Portside's functions the time is spent under).

    .venv/bin/python -m benchmarks profile --load manifest-tag [--seconds 20] [--out DIR] [--svg]

py-spy (`pip install py-spy` into the venv) skips threads it sees idle, so the shares are of
the busy samples. Two things to read them by:
- Granian's I/O threads hold a Python thread state but run no Python frame; their samples
  are shown as one line of their own.
- aiosqlite runs each connection's calls on a thread of its own; the time such a thread
  spends woken and waiting for a CPU (or handing results back) is counted as busy and shows
  as self time of `_connection_worker_thread`. On a busy machine that is most of it: a
  native profile (`py-spy record --native`) shows SQLite itself is a small part.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from benchmarks.context import BASE_REPO, BASE_TAG
from benchmarks.payloads import Payloads, config_blob
from benchmarks.registry import MANIFEST_TYPE, RegistryClient, basic_auth, bearer_token, token_url
from benchmarks.servers import PASSWORD, USERNAME, Registry, start_portside

__all__ = ["LOADS", "profile", "summarize"]

LOADS = ("manifest-tag", "manifest-digest", "head", "token", "manifest-tag-auth", "head-auth")


@dataclass(frozen=True)
class Hotspots:
    samples: int
    by_function: list[tuple[str, float]]  # self time
    by_package: list[tuple[str, float]]  # self time, summed per top-level package
    by_portside_caller: list[tuple[str, float]]  # each sample charged to its deepest Portside frame


_LINE = re.compile(r"^(.*) (\d+)$")
_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^()]*)\)$")
# Threads that hold a Python thread state but run no Python frame: Granian's runtime threads.
NO_FRAME = "(no Python frame: Granian's Rust threads)"
OUTSIDE = "(outside Portside's code: server, framework, aiosqlite worker thread)"


def _package(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    if path.startswith("<"):
        return "python (runpy, frozen)"
    first = path.split("/", 1)[0]
    return first.removesuffix(".py") if "/" in path or path.endswith(".py") else path


def _top(counter: Counter[str], samples: int, top: int) -> list[tuple[str, float]]:
    return [(name, 100.0 * n / samples) for name, n in counter.most_common(top)] if samples else []


def summarize(collapsed: str, top: int = 25) -> Hotspots:
    """Shares of busy samples from py-spy's raw (collapsed) output, whose frames look like
    `get_blob (portside/http/v2/blobs.py)`; `process …` frames name the process."""
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    callers: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        match = _LINE.match(line.strip())
        if not match:
            continue
        count = int(match[2])
        frames = [f for f in match[1].split(";") if f and not f.startswith("process ")]
        samples += count
        if not frames:
            own[NO_FRAME] += count
            packages[NO_FRAME] += count
            callers[NO_FRAME] += count
            continue
        own[frames[-1]] += count
        packages[_package(frames[-1])] += count
        mine = [f for f in frames if "(portside/" in f and not f.startswith(("<module>", "main ", "serve "))]
        callers[mine[-1] if mine else OUTSIDE] += count
    return Hotspots(samples, _top(own, samples, top), _top(packages, samples, top), _top(callers, samples, top))


def _load_command(load: str, registry: Registry, digest: str, blob_digest: str, seconds: int) -> list[str]:
    url = registry.url
    headers: dict[str, str] = {}
    if load.endswith("-auth"):
        headers = bearer_token(url, USERNAME, PASSWORD, [f"repository:{BASE_REPO}:pull"])
    header_args = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    if load.startswith("head"):
        target = f"{url}/v2/{BASE_REPO}/blobs/{blob_digest}"
        return ["ab", "-q", "-i", "-k", "-c", "64", "-t", str(seconds), "-n", "100000000", *header_args, target]
    if load == "token":
        target = token_url(url, [f"repository:{BASE_REPO}:pull"])
        header_args = ["-H", f"Authorization: {basic_auth(USERNAME, PASSWORD)['Authorization']}"]
    else:
        reference = digest if load == "manifest-digest" else BASE_TAG
        target = f"{url}/v2/{BASE_REPO}/manifests/{reference}"
        header_args += ["-H", f"Accept: {MANIFEST_TYPE}"]
    return ["wrk", "-t2", "-c64", f"-d{seconds}s", *header_args, target]


def profile(load: str, seconds: int, out: Path, workers: int, source: Path | None, svg: bool) -> Hotspots:
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out.mkdir(parents=True, exist_ok=True)
    mode = "auth" if load.endswith("-auth") or load == "token" else "open"
    with tempfile.TemporaryDirectory(prefix="portside-profile-") as tmp:
        registry = start_portside(Path(tmp), mode, workers, source)
        try:
            layer = Payloads.random_blob(1024 * 1024)
            with RegistryClient(registry.url, registry.seeding_auth()) as client:
                digest = client.push_image(BASE_REPO, BASE_TAG, config_blob("profile"), [layer])
            formats = [("raw", out / f"{load}.txt")] + ([("flamegraph", out / f"{load}.svg")] if svg else [])
            for fmt, path in formats:
                driver = subprocess.Popen(
                    _load_command(load, registry, digest, layer.digest, seconds + 4),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                time.sleep(2)  # past the connection ramp-up
                record = [pyspy, "record", "--pid", str(registry.pid), "--subprocesses", "--nonblocking"]
                record += ["--rate", "200", "--duration", str(seconds), "--format", fmt, "-o", str(path)]
                if fmt == "raw":
                    record.append("--nolineno")
                subprocess.run(record, check=True, capture_output=True)
                load_output, _ = driver.communicate(timeout=seconds + 120)
                (out / f"{load}.load.txt").write_text(load_output)
        finally:
            registry.stop()
    return summarize((out / f"{load}.txt").read_text())
