"""Where Portside spends its CPU under one kind of load: py-spy samples the server's
processes while wrk or ab drives it, and the samples are summed per function.

    .venv/bin/python -m benchmarks profile --load manifest-tag [--seconds 20] [--out DIR]

py-spy (`pip install py-spy` into the venv) samples only threads running Python, so the
percentages are of the busy samples: "self" is time in the function's own code, "total"
includes what it called. Time in Granian's Rust threads and in the kernel is not seen.
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
    self_share: list[tuple[str, float]]
    total_share: list[tuple[str, float]]


_LINE = re.compile(r"^(.*) (\d+)$")
_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^()]*)\)$")


def _short(frame: str) -> str:
    """`get_blob (/…/site-packages/portside/http/v2/blobs.py)` → `get_blob (portside/http/v2/blobs.py)`."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "/src/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['name']} ({path})"


def summarize(collapsed: str, top: int = 25) -> Hotspots:
    """Self and total shares per function from py-spy's raw (collapsed) output."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        match = _LINE.match(line.strip())
        if not match:
            continue
        count = int(match[2])
        frames = [_short(f) for f in match[1].split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    share = 100.0 / samples if samples else 0.0
    return Hotspots(
        samples,
        [(name, n * share) for name, n in own.most_common(top)],
        [(name, n * share) for name, n in total.most_common(top)],
    )


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
