"""A server's process tree, found in /proc: Portside's Granian supervisor and its workers,
Distribution's one process. The memory sampler and the CPU meter both read it."""

from __future__ import annotations

import os
from collections.abc import Iterator

__all__ = ["children", "tree", "thread_cpu", "cpu_seconds_between"]


def children() -> dict[int, list[int]]:
    """Every process's children, by parent pid."""
    found: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # exited meanwhile
        # The command name is in parentheses and may hold spaces; ppid follows the state.
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        found.setdefault(ppid, []).append(int(entry))
    return found


def tree(root: int, by_parent: dict[int, list[int]] | None = None) -> Iterator[int]:
    """`root` and all its descendants."""
    by_parent = children() if by_parent is None else by_parent
    pending = [root]
    while pending:
        pid = pending.pop()
        yield pid
        pending.extend(by_parent.get(pid, ()))


def thread_cpu(pids: list[int]) -> dict[int, int]:
    """CPU time each thread of the processes has run so far, user and system together, in
    nanoseconds, by thread id.

    Read from each thread's schedstat, not from stat's clock ticks: a pull of the big blob
    costs a server about a tenth of a second, and ticks come in hundredths."""
    found: dict[int, int] = {}
    for pid in pids:
        try:
            threads = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in threads:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    found[int(tid)] = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    return found


def cpu_seconds_between(before: dict[int, int], after: dict[int, int]) -> float:
    """CPU time spent between two `thread_cpu` readings. A thread started meanwhile counts
    from zero; one that ended meanwhile (a server's idle pool thread) is left out, so the
    sum never goes below zero."""
    return sum(ns - before.get(tid, 0) for tid, ns in after.items()) / 1e9
