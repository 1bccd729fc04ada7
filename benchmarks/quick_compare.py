"""A first side-by-side of Portside and the CNCF Distribution registry, in one run.

Starts both on loopback (filesystem storage, access logs off; Portside as an open registry,
so neither side authenticates), pushes the same 256 MiB blob and an image holding it to
each, then alternates A B A B over the rounds and prints medians and Portside/Distribution
ratios for: blob push (monolithic PATCH), blob pull, and manifest GET by tag (wrk, 64
connections). The full suite of the benchmarks issue builds on this.

    .venv/bin/python benchmarks/quick_compare.py [--rounds 3] [--seconds 8]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.servers import Distribution, Portside  # noqa: E402

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _absolute(base: str, location: str) -> str:
    return location if location.startswith("http") else base + location


def push_blob(client: httpx.Client, base: str, repo: str, data: bytes) -> float:
    """One blob through a session (POST, one PATCH, PUT); returns MB/s."""
    started = time.perf_counter()
    session = client.post(f"/v2/{repo}/blobs/uploads/")
    session.raise_for_status()
    patched = client.patch(_absolute(base, session.headers["location"]), content=data)
    patched.raise_for_status()
    url = _absolute(base, patched.headers["location"])
    client.put(url + ("&" if "?" in url else "?") + "digest=" + digest(data)).raise_for_status()
    return len(data) / (time.perf_counter() - started) / 1e6


def push_image(client: httpx.Client, base: str, repo: str, layer: bytes) -> None:
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    for blob in (config, layer):
        push_blob(client, base, repo, blob)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": digest(config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "digest": digest(layer),
                "size": len(layer),
            }
        ],
    }
    client.put(
        f"/v2/{repo}/manifests/v1", content=json.dumps(manifest).encode(), headers={"Content-Type": MANIFEST_TYPE}
    ).raise_for_status()


def pull_mbps(base: str, repo: str, blob: str) -> float:
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{speed_download}", f"{base}/v2/{repo}/blobs/{blob}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out) / 1e6


def manifest_rps(base: str, repo: str, seconds: int) -> float:
    out = subprocess.run(
        ["wrk", "-t2", "-c64", f"-d{seconds}s", "-H", f"Accept: {MANIFEST_TYPE}", f"{base}/v2/{repo}/manifests/v1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"manifest GETs failed:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--blob-mib", type=int, default=256)
    args = parser.parse_args()
    layer = os.urandom(args.blob_mib * 1024 * 1024)
    results: dict[str, dict[str, list[float]]] = {"portside": {}, "distribution": {}}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        servers = {
            "portside": Portside(data_dir=Path(tmp) / "p" / "data", env={"PORTSIDE_LOG_REQUESTS": "false"}).start(),
            "distribution": Distribution(data_dir=Path(tmp) / "d" / "data").start(),
        }
        try:
            clients = {name: httpx.Client(base_url=s.url, timeout=300) for name, s in servers.items()}
            for name, server in servers.items():
                push_image(clients[name], server.url, "bench/img", layer)
            for round_ in range(args.rounds):
                for name, server in servers.items():  # A B A B: machine noise falls on both
                    scores = results[name]
                    scores.setdefault("blob push MB/s", []).append(
                        push_blob(clients[name], server.url, f"bench/push{round_}", layer)
                    )
                    scores.setdefault("blob pull MB/s", []).append(pull_mbps(server.url, "bench/img", digest(layer)))
                    scores.setdefault("manifest GET/s (64 conn)", []).append(
                        manifest_rps(server.url, "bench/img", args.seconds)
                    )
        finally:
            for server in servers.values():
                server.stop()
    print(f"{'scenario':28} {'Portside':>10} {'Distribution':>13} {'ratio':>7}")
    for scenario in results["portside"]:
        p = statistics.median(results["portside"][scenario])
        d = statistics.median(results["distribution"][scenario])
        print(f"{scenario:28} {p:10.0f} {d:13.0f} {p / d:7.2f}")


if __name__ == "__main__":
    main()
