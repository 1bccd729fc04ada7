"""Load generators, each a C tool run as a subprocess so the client stays cheap beside the
server on the same machine:

- `wrk` for GETs on keep-alive connections (requests/s and latency percentiles);
- `ab -i -k` for HEADs: wrk waits for a body after a HEAD answer that names a length, so it
  cannot drive HEADs; ab (HTTP/1.0 with keep-alive) can;
- `curl` for transfers: one blob (MB/s), or a client pulling several URLs on one
  connection, many such clients at once.

Every generator fails loudly on an answer other than the one expected: a fast error is not
a result.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Rate", "Transfer", "wrk", "ab_head", "curl_get", "curl_clients"]


class LoadError(RuntimeError):
    """A load generator saw failed requests or could not run."""


@dataclass(frozen=True)
class Rate:
    requests_per_second: float
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class Transfer:
    status: int
    size: int
    seconds: float

    @property
    def mb_per_second(self) -> float:
        return self.size / self.seconds / 1e6


def _header_args(headers: dict[str, str]) -> list[str]:
    return [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]


def _run(command: list[str], timeout: float) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise LoadError(f"{command[0]} exited with {done.returncode}: {done.stderr.strip()[:2000]}")
    return done.stdout


_WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_WRK_PERCENTILE = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)


def wrk(url: str, seconds: float, connections: int = 64, headers: dict[str, str] | None = None) -> Rate:
    """GET `url` from `connections` keep-alive connections for `seconds` (wrk, 2 threads)."""
    threads = min(2, connections)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    out = _run([*command, *_header_args(headers or {}), url], timeout=seconds + 60)
    if "Non-2xx" in out:
        raise LoadError(f"wrk saw failed requests on {url}:\n{out}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors and any(int(n) for n in errors.groups()):
        print(f"warning: wrk socket errors on {url}: {errors.group(0)}", file=sys.stderr)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    percentiles = {int(p): float(v) * _WRK_UNITS[unit] for p, v, unit in _WRK_PERCENTILE.findall(out)}
    if rate is None or 50 not in percentiles or 99 not in percentiles:
        raise LoadError(f"could not read wrk's output:\n{out}")
    return Rate(float(rate.group(1)), percentiles[50], percentiles[99])


def ab_head(url: str, seconds: float, connections: int = 64, headers: dict[str, str] | None = None) -> Rate:
    """HEAD `url` from `connections` keep-alive connections for `seconds` (ab -i -k)."""
    with tempfile.NamedTemporaryFile("r", suffix=".csv") as percentiles_file:
        command = ["ab", "-q", "-i", "-k", "-c", str(connections), "-t", str(max(1, round(seconds)))]
        # -n after -t: ab stops at the time limit, not at its default of 50,000 requests.
        command += ["-n", "100000000", "-e", percentiles_file.name, *_header_args(headers or {}), url]
        out = _run(command, timeout=seconds + 60)
        percentiles = dict(line.split(",") for line in percentiles_file.read().splitlines()[1:] if line.count(",") == 1)
    failed = re.search(r"Failed requests:\s+(\d+)", out)
    non_2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    if (failed and int(failed.group(1))) or non_2xx:
        raise LoadError(f"ab saw failed requests on {url}:\n{out}")
    rate = re.search(r"Requests per second:\s+([\d.]+)", out)
    if rate is None or "50" not in percentiles or "99" not in percentiles:
        raise LoadError(f"could not read ab's output:\n{out}")
    return Rate(float(rate.group(1)), float(percentiles["50"]), float(percentiles["99"]))


_CURL_WRITE_OUT = "%{http_code} %{size_download} %{time_total}\\n"


def _transfers(out: str) -> list[Transfer]:
    transfers = []
    for line in out.splitlines():
        status, size, seconds = line.split()
        transfers.append(Transfer(int(status), int(size), float(seconds)))
    return transfers


def curl_get(
    url: str, headers: dict[str, str] | None = None, byte_range: tuple[int, int] | None = None, expect: int = 200
) -> Transfer:
    """One GET with curl into /dev/null; `byte_range` is inclusive, as HTTP's Range is."""
    command = ["curl", "-sS", "-o", "/dev/null", "-w", _CURL_WRITE_OUT, *_header_args(headers or {})]
    if byte_range is not None:
        command += ["-r", f"{byte_range[0]}-{byte_range[1]}"]
    (transfer,) = _transfers(_run([*command, url], timeout=600))
    if transfer.status != expect:
        raise LoadError(f"GET {url}: HTTP {transfer.status}, expected {expect}")
    return transfer


def curl_clients(clients: int, urls: Sequence[str], headers: dict[str, str] | None = None) -> tuple[float, int]:
    """`clients` curl processes at once, each GETting every URL in turn on one connection.
    Returns (wall time in seconds from the first start to the last finish, bytes received)."""
    command = ["curl", "-sS", "-w", _CURL_WRITE_OUT, *_header_args(headers or {})]
    for url in urls:
        command += [url, "-o", "/dev/null"]
    started = time.perf_counter()
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(clients)
    ]
    outputs = [process.communicate(timeout=600) for process in processes]
    wall = time.perf_counter() - started
    received = 0
    for process, (out, err) in zip(processes, outputs, strict=True):
        if process.returncode != 0:
            raise LoadError(f"curl exited with {process.returncode}: {err.strip()[:2000]}")
        for transfer in _transfers(out):
            if transfer.status != 200:
                raise LoadError(f"a concurrent pull got HTTP {transfer.status}")
            received += transfer.size
    return wall, received
