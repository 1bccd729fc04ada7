"""A pull through a proxy project against a pull straight from its upstream: a live Portside
(filesystem, SQLite, one server process per core) proxies a CNCF Distribution registry
(Debian's `docker-registry`), both on 127.0.0.1. Each round pushes a fresh image (three
random layers of `--layer-mib` each) to Distribution, then pulls it, manifest by tag and
each blob whole, one after the other as a client would:

- direct: from Distribution;
- cold: through the proxy project, nothing cached (each blob streamed to the client as it is
  fetched and stored in the same pass);
- warm: through the proxy project again, once the cache kept it (the upstream is asked the
  tag's digest, a HEAD, and sends nothing else).

The rounds alternate the three, so a slow moment of the machine falls on all alike; the
report is MB/s of each and the cold and warm rates over the direct one.

    .venv/bin/python -m benchmarks.proxy [--rounds N] [--layer-mib M] [--json FILE]

Run from the repository root (it imports `tests/servers.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.servers import ADMIN_PASSWORD, Distribution, Portside  # noqa: E402

from benchmarks.registry import Blob, RegistryClient  # noqa: E402

ACCEPT = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"


def _pull(client: httpx.Client, repo: str, tag: str) -> int:
    """Bytes read pulling `repo:tag`: its manifest, then each blob."""
    r = client.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT})
    r.raise_for_status()
    manifest = r.json()
    total = len(r.content)
    for descriptor in [manifest["config"], *manifest["layers"]]:
        with client.stream("GET", f"/v2/{repo}/blobs/{descriptor['digest']}") as blob:
            blob.raise_for_status()
            for chunk in blob.iter_bytes(1 << 20):
                total += len(chunk)
    return total


def _rate(client: httpx.Client, repo: str, tag: str) -> float:
    started = time.perf_counter()
    size = _pull(client, repo, tag)
    return size / (time.perf_counter() - started) / 1e6


def _kept(api: httpx.Client, repo: str, tag: str, timeout: float = 120.0) -> None:
    path = f"/projects/cache/repositories/{repo.replace('/', '%252F')}/artifacts/{tag}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.get(path).status_code == 200:
            return
        time.sleep(0.05)
    raise RuntimeError(f"cache/{repo}:{tag} was not kept within {timeout}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.proxy", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--layer-mib", type=int, default=32)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as work:
        root = Path(work)
        upstream = Distribution(data_dir=root / "upstream").start()
        portside = Portside(
            data_dir=root / "portside",
            env={"PORTSIDE_WORKERS": str(os.cpu_count() or 1), "PORTSIDE_LOG_REQUESTS": "false"},
        ).start()
        try:
            with httpx.Client(base_url=f"{portside.url}/api/v2.0", auth=("admin", ADMIN_PASSWORD)) as api:
                r = api.post("/registries", json={"name": "upstream", "type": "docker-registry", "url": upstream.url})
                r.raise_for_status()
                registry_id = int(r.headers["Location"].rsplit("/", 1)[1])
                api.post(
                    "/projects",
                    json={"project_name": "cache", "registry_id": registry_id, "metadata": {"public": "true"}},
                ).raise_for_status()
                rates: dict[str, list[float]] = {"direct": [], "cold": [], "warm": []}
                for n in range(args.rounds):
                    tag = f"r{n}"
                    config = Blob.of(json.dumps({"architecture": "amd64", "os": "linux", "n": n}).encode())
                    layers = [Blob.of(os.urandom(args.layer_mib << 20)) for _ in range(3)]
                    with RegistryClient(upstream.url) as seed:
                        seed.push_image("lib/big", tag, config, layers)
                    del layers
                    with httpx.Client(base_url=upstream.url, timeout=120) as direct:
                        rates["direct"].append(_rate(direct, "lib/big", tag))
                    with httpx.Client(base_url=portside.url, timeout=120) as proxied:
                        rates["cold"].append(_rate(proxied, "cache/lib/big", tag))
                        _kept(api, "lib/big", tag)
                        rates["warm"].append(_rate(proxied, "cache/lib/big", tag))
                    print(
                        f"round {n + 1}: " + ", ".join(f"{k} {v[-1]:,.0f} MB/s" for k, v in rates.items()), flush=True
                    )
        finally:
            portside.stop()
            upstream.stop()
    medians = {k: statistics.median(v) for k, v in rates.items()}
    result: dict[str, Any] = {
        "layer_mib": args.layer_mib,
        "rounds": args.rounds,
        "rates_mb_s": rates,
        "median_mb_s": medians,
        "cold_over_direct": medians["cold"] / medians["direct"],
        "warm_over_direct": medians["warm"] / medians["direct"],
        "load_average": os.getloadavg(),
    }
    print(
        f"median MB/s: direct {medians['direct']:,.0f}, cold {medians['cold']:,.0f}, warm {medians['warm']:,.0f};"
        f" cold/direct {result['cold_over_direct']:.2f}, warm/direct {result['warm_over_direct']:.2f}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
