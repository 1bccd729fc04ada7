"""Copy throughput: the copy engine (`portside copy`, `portside sync` and replication all use
it) copying one image of many layers from Portside to Distribution, and from Distribution to
Distribution, beside skopeo doing the same two copies on the same servers in the same run.

    .venv/bin/python -m benchmarks.copy_throughput [--quick] [--rounds N] [--json FILE]

The source registries are an open Portside (filesystem, SQLite, one worker per core) and an
open Distribution holding the same image (random bytes, so nothing compresses or dedupes on
the way); each measured copy goes to a Distribution started afresh for it (an empty data
directory), so every copy sends every byte and none can mount or skip anything. The four
copies take turns in an order that turns round each round, and the report gives the median
of each in MB/s (10^6 bytes a second) over the rounds. Run from the repository root (it
imports `tests/servers.py`), with `docker-registry` and `skopeo`. Everything listens on
127.0.0.1 and is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.e2e.images import OCI_CONFIG, OCI_MANIFEST, OciLayout, canonical_json
from tests.servers import Distribution, Portside

from portside.remote.client import RemoteRegistry
from portside.remote.copy import Copier
from portside.remote.layout import LayoutEndpoint

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"


def _log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _image(root: Path, layers: int, layer_size: int) -> int:
    """A layout tagged `bench` with `layers` random layers; the bytes of all its blobs."""
    layout = OciLayout(root)
    descriptors = [layout.add_blob(os.urandom(layer_size), LAYER_MEDIA_TYPE) for _ in range(layers)]
    config = layout.add_blob(
        canonical_json({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}),
        OCI_CONFIG,
    )
    body = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.to_json(),
            "layers": [d.to_json() for d in descriptors],
        }
    )
    layout.tag(layout.add_blob(body, OCI_MANIFEST), "bench")
    return layers * layer_size + config.size


async def _engine_copy(source_url: str, target_url: str, src_repo: str, dst_repo: str) -> None:
    async with RemoteRegistry(source_url, timeout=600) as source, RemoteRegistry(target_url, timeout=600) as target:
        await Copier(source, target).copy(src_repo, "bench", dst_repo)


async def _seed(layout: Path, url: str) -> None:
    async with RemoteRegistry(url, timeout=600) as target:
        await Copier(LayoutEndpoint(layout), target).copy("bench", "bench", "bench/image")


def _skopeo_copy(source_host: str, target_host: str, src_repo: str, dst_repo: str) -> None:
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            f"docker://{source_host}/{src_repo}:bench",
            f"docker://{target_host}/{dst_repo}:bench",
        ],  # fmt: skip
        check=True,
        capture_output=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.copy_throughput", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="4 layers of 4 MiB, 2 rounds")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    layers, layer_size = (4, 4 << 20) if args.quick else (10, 20 << 20)
    rounds = args.rounds or (2 if args.quick else 3)
    workers = os.cpu_count() or 1

    with tempfile.TemporaryDirectory(prefix="portside-copy-bench-") as work:
        root = Path(work)
        total = _image(root / "layout", layers, layer_size)
        portside = Portside(data_dir=root / "portside" / "data", env={"PORTSIDE_WORKERS": str(workers),
                                                                       "PORTSIDE_LOG_REQUESTS": "false"})  # fmt: skip
        origin = Distribution(data_dir=root / "origin" / "data")
        servers: list[Any] = [portside.start(), origin.start()]
        samples: dict[str, list[float]] = {}
        try:
            for url in (portside.url, origin.url):
                asyncio.run(_seed(root / "layout", url))
            _log(f"seeded {total / 1e6:.0f} MB in {layers} layers into Portside and Distribution")
            copies = {
                "engine Portside → Distribution": lambda t: asyncio.run(
                    _engine_copy(portside.url, t.url, "bench/image", "copied")
                ),
                "engine Distribution → Distribution": lambda t: asyncio.run(
                    _engine_copy(origin.url, t.url, "bench/image", "copied")
                ),
                "skopeo Portside → Distribution": lambda t: _skopeo_copy(
                    portside.host, t.host, "bench/image", "copied"
                ),
                "skopeo Distribution → Distribution": lambda t: _skopeo_copy(
                    origin.host, t.host, "bench/image", "copied"
                ),
            }
            names = list(copies)
            for number in range(rounds):
                for name in names if number % 2 == 0 else list(reversed(names)):
                    target = Distribution(data_dir=root / f"target-{number}-{names.index(name)}" / "data").start()
                    try:
                        subprocess.run(["sync"], check=False)
                        started = time.perf_counter()
                        copies[name](target)
                        elapsed = time.perf_counter() - started
                    finally:
                        target.stop()
                    samples.setdefault(name, []).append(total / elapsed / 1e6)
                    _log(f"round {number + 1}: {name}: {total / elapsed / 1e6:.0f} MB/s")
        finally:
            for server in servers:
                server.stop()

    print(f"\n| copy of {layers} × {layer_size >> 20} MiB ({total / 1e6:.0f} MB) | median MB/s | rounds |")
    print("|---|---:|---|")
    for name, values in samples.items():
        print(f"| {name} | {statistics.median(values):.0f} | {', '.join(f'{v:.0f}' for v in values)} |")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "when": datetime.now(UTC).isoformat(),
                    "layers": layers,
                    "layer_size": layer_size,
                    "bytes": total,
                    "samples": samples,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
