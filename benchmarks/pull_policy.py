"""What a project's pull policy costs a manifest GET: one live Portside (filesystem, SQLite,
its own access control) holds the same small image in three projects, `open` without a
policy, `gated` with Harbor's `prevent_vul` (severity low) and the image scanned with
nothing found, and `signed` with `enable_content_trust_cosign` and the image signed (cosign's
tag scheme, ECDSA P-256) by a key of the project's trust policy, so every GET is checked
and let through. wrk GETs the manifest by tag and
by digest in each project with a Bearer token, as docker pulls, the two projects taking
turns round after round on the same server, so a slow moment of the machine falls on
both alike; the report is the gated and signed rates over the open one.

    .venv/bin/python -m benchmarks.pull_policy [--rounds N] [--seconds S] [--json FILE]

Run from the repository root (it imports `tests/servers.py`), with `wrk`. Everything
listens on 127.0.0.1 and is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from tests.servers import ADMIN_PASSWORD, Portside

from benchmarks.load import wrk
from benchmarks.registry import Blob, RegistryClient, basic_auth, bearer_token

USERNAME = "admin"
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
REPORT_MIME = "application/vnd.security.vulnerability.report; version=1.1"
PROJECTS = {
    "open": {"public": "false"},
    "gated": {"public": "false", "prevent_vul": "true", "severity": "low"},
    "signed": {"public": "false", "enable_content_trust_cosign": "true"},
}


def _log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _image() -> tuple[Blob, list[Blob]]:
    import gzip
    import io
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        data = b"hello from the pull policy benchmark\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    layer = Blob.of(gzip.compress(raw.getvalue(), mtime=0))
    config = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {
            "type": "layers",
            "diff_ids": ["sha256:" + __import__("hashlib").sha256(raw.getvalue()).hexdigest()],
        },
    }
    return Blob.of(json.dumps(config).encode()), [layer]


def _seed(server: Portside) -> str:
    """Both projects hold the image as `v1`; the gated one's is scanned (against the
    fixtures' PyPI advisories, which it does not hold). Its digest."""
    from benchmarks.scanning import FIXTURES, _vulndb_import

    _vulndb_import(server, FIXTURES / "osv" / "PyPI")
    api = httpx.Client(base_url=f"{server.url}/api/v2.0", auth=(USERNAME, ADMIN_PASSWORD), timeout=60)
    config, layers = _image()
    digest = ""
    with RegistryClient(server.url, basic_auth(USERNAME, ADMIN_PASSWORD)) as client:
        for name, metadata in PROJECTS.items():
            r = api.post("/projects", json={"project_name": name, "metadata": metadata})
            r.raise_for_status()
            digest = client.push_image(f"{name}/app", "v1", config, layers)
        _sign(client, api, "signed/app", digest)
    path = f"/projects/gated/repositories/app/artifacts/{digest}"
    api.post(f"{path}/scan", json={"scan_type": "vulnerability"}).raise_for_status()
    deadline = time.monotonic() + 120
    while True:
        overview = api.get(path, params={"with_scan_overview": "true"}).json().get("scan_overview") or {}
        status = overview.get(REPORT_MIME, {}).get("scan_status")
        if status == "Success":
            break
        if status in ("Error", "Stopped") or time.monotonic() > deadline:
            raise RuntimeError(f"the gated image's scan ended {status}")
        time.sleep(0.3)
    api.close()
    return digest


def _sign(client: RegistryClient, api: httpx.Client, repo: str, digest: str) -> None:
    """A cosign simple-signing signature of `digest` under its `.sig` tag, by a key the
    project then trusts."""
    import base64

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    payload = json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": repo},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    ).encode()
    signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    config, layer = Blob.of(b"{}"), Blob.of(payload)
    client.push_blob(repo, config)
    client.push_blob(repo, layer)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.digest, "size": 2},
        "layers": [
            {
                "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                "digest": layer.digest,
                "size": len(payload),
                "annotations": {"dev.cosignproject.cosign/signature": signature},
            }
        ],
    }
    tag = digest.replace(":", "-") + ".sig"
    client.put_manifest(repo, tag, json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    project = repo.split("/")[0]
    api.put(
        f"/projects/{project}/trust", json={"cosign_keys": [{"name": "bench", "public_key": public.decode()}]}
    ).raise_for_status()


def run(rounds: int, seconds: float, connections: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="portside-policy-bench-") as work:
        env = {
            "PORTSIDE_LOG_REQUESTS": "false",
            "PORTSIDE_LOG_LEVEL": "warning",
            "PORTSIDE_WORKERS": str(os.cpu_count() or 1),
            "PORTSIDE_JOB_POLL_SECONDS": "1",
        }
        server = Portside(data_dir=Path(work) / "data", env=env, open_registry=False).start()
        try:
            digest = _seed(server)
            token = bearer_token(
                server.url, USERNAME, ADMIN_PASSWORD, [f"repository:{name}/app:pull" for name in PROJECTS]
            )
            headers = {**token, "Accept": MANIFEST}
            for name in PROJECTS:  # each answers 200 before it is measured (wrk refuses non-2xx)
                httpx.get(f"{server.url}/v2/{name}/app/manifests/v1", headers=headers).raise_for_status()
            samples: dict[str, list[dict[str, float]]] = {}
            for number in range(rounds):
                _log(f"round {number + 1} of {rounds}")
                for reference in ("v1", digest):
                    for name in PROJECTS if number % 2 == 0 else reversed(PROJECTS):
                        rate = wrk(f"{server.url}/v2/{name}/app/manifests/{reference}", seconds, connections, headers)
                        key = f"{name} by {'tag' if reference == 'v1' else 'digest'}"
                        samples.setdefault(key, []).append({"rps": rate.requests_per_second, "p99_ms": rate.p99_ms})
        finally:
            server.stop()
    medians = {
        key: {m: statistics.median(s[m] for s in runs) for m in ("rps", "p99_ms")} for key, runs in samples.items()
    }
    ratios = {by: medians[f"gated by {by}"]["rps"] / medians[f"open by {by}"]["rps"] for by in ("tag", "digest")}
    signed = {by: medians[f"signed by {by}"]["rps"] / medians[f"open by {by}"]["rps"] for by in ("tag", "digest")}
    return {
        "signed_over_open": signed,
        "rounds": rounds,
        "seconds": seconds,
        "connections": connections,
        "samples": samples,
        "medians": medians,
        "gated_over_open": ratios,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pull_policy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args(argv)
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    load = os.getloadavg()[0]
    results = {
        "started": started,
        "load_average_start": load,
        **run(options.rounds, options.seconds, options.connections),
    }
    results["load_average_end"] = os.getloadavg()[0]
    print(f"Manifest GET, {options.connections} connections, {options.rounds} rounds of {options.seconds:g} s: medians")
    print(f"  {'project / reference':<20} {'req/s':>10} {'p99 ms':>8}")
    for key, value in results["medians"].items():
        print(f"  {key:<20} {value['rps']:>10.0f} {value['p99_ms']:>8.1f}")
    for by, ratio in results["gated_over_open"].items():
        print(f"  gated / open by {by}: {ratio:.2f}")
    for by, ratio in results["signed_over_open"].items():
        print(f"  signed / open by {by}: {ratio:.2f}")
    print(f"load average {load:.2f} at the start, {results['load_average_end']:.2f} at the end")
    if options.json is not None:
        options.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
