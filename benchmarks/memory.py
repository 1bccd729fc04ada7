"""Peak memory of each server, read from /proc while the run goes on.

A server is a process tree (Portside: the Granian supervisor and its workers; Distribution:
one process). Every quarter second the sampler finds the tree's processes and keeps each
one's VmHWM — the kernel's own high-water mark of its resident set — so even a peak
between samples is caught. A server's peak RSS is the sum over its processes: an upper
bound of what they held at any one moment, which counts twice the pages forked workers
still share with their parent. So the sampler also sums the processes' PSS (shared pages
divided among their sharers, from smaps_rollup) and keeps the highest sum it saw: closer to
what the server costs the machine, though a peak between samples is missed.
"""

from __future__ import annotations

import threading

from benchmarks.processes import children, tree

__all__ = ["PeakMemory"]

_INTERVAL = 0.25


def _field_kib(path: str, name: str) -> int | None:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class PeakMemory:
    """Samples the process trees of the servers it watches (name → root pid) until stopped."""

    def __init__(self) -> None:
        self._roots: dict[str, int] = {}
        self._peaks: dict[str, dict[int, int]] = {}
        self._pss: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-memory", daemon=True)

    def watch(self, name: str, root_pid: int) -> None:
        with self._lock:
            self._roots[name] = root_pid
            self._peaks.setdefault(name, {})
        self.sample()

    def start(self) -> PeakMemory:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.sample()
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def sample(self) -> None:
        by_parent = children()
        with self._lock:
            for name, root in self._roots.items():
                peaks = self._peaks[name]
                pss = 0
                for pid in tree(root, by_parent):
                    kib = _field_kib(f"/proc/{pid}/status", "VmHWM:")
                    if kib is not None and kib > peaks.get(pid, 0):
                        peaks[pid] = kib
                    pss += _field_kib(f"/proc/{pid}/smaps_rollup", "Pss:") or 0
                self._pss[name] = max(self._pss.get(name, 0), pss)

    def peak_mib(self, name: str) -> float:
        """Sum of VmHWM over every process the server has had, in MiB."""
        with self._lock:
            return sum(self._peaks.get(name, {}).values()) / 1024

    def peak_pss_mib(self, name: str) -> float:
        """The highest sum of PSS over the server's processes that a sample saw, in MiB."""
        with self._lock:
            return self._pss.get(name, 0) / 1024

    def processes(self, name: str) -> int:
        with self._lock:
            return len(self._peaks.get(name, {}))

    def _run(self) -> None:
        while not self._stop.wait(_INTERVAL):
            self.sample()
