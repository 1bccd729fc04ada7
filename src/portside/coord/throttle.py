"""Failed attempts counted by every process of one machine: `auth.throttle.Throttle` over a
fixed-size table in a memory-mapped file beside the locks (`locks/attempts.table`).

Layout (little-endian; 4 MiB, whatever the traffic)::

    header   128 bytes   magic "PSTHRT01" | boot id (16) | buckets (u32) | hash key (32) | 0…
    buckets  4096 × 8 slots of 128 bytes, one key's recent failures per slot:
             tag (16) | stored (u32) | folded (u32) | folded_last (u64) | times (12 × u64)

A key is found by a keyed BLAKE2b of it (the hash key is random per table, made when the
table is): 16 bytes are its tag, and two more pick two buckets, either of which may hold
it (a new key goes to the emptier one, so buckets fill evenly until the table is nearly
full). Keys are account names and addresses; only their hashes are stored, and never
anything of a password. `times` are the key's last failures, oldest first, as
CLOCK_MONOTONIC nanoseconds: one clock for every process of the machine, which keeps
running when they restart. The kernel's boot id in the header tells a table written
before the machine rebooted (whose times mean nothing now): it is started afresh. A limit
above 12 (set to turn throttling off, in effect) folds the oldest failures into a count
and the time of the newest of them, and counts them all until that one leaves the window:
longer than exact, never shorter.

Every change takes `flock` on the file for a read-modify-write of a few slots
(microseconds, on the event loop: not worth a thread hop); `check` takes it shared.

When the table is full. A slot is free when it is empty or all its failures have left
the window. A new key whose two buckets hold only live keys is refused (429, with
Retry-After until a slot there frees), and nothing is evicted. Evicting a live key would
forget its failures, and then flooding the table with other keys would reset the count of
the account under attack: exactly the attack this prevents. Not counting the new key
would let the flood buy unlimited guesses for any account not yet in the table. Refusing
errs on the safe side: the cost of filling the table is a denial of logins for keys not
already in it, for at most one window after the flood stops, and filling it takes
failures from thousands of addresses within one window (each address may make only
`limit` failures, so it brings at most `limit + 1` keys), with bucket positions an
outsider cannot predict. Keys already in the table are counted exactly throughout.
"""

from __future__ import annotations

import bisect
import fcntl
import hashlib
import logging
import mmap
import os
import secrets
import struct
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from portside.auth.throttle import Reservation, too_many_failures

__all__ = ["MachineLoginThrottle"]

log = logging.getLogger("portside.coord")

_MAGIC = b"PSTHRT01"
_HEADER = struct.Struct("<8s16sI32s")
_HEADER_SIZE = 128
_TIMES = 12
_SLOT = struct.Struct(f"<16sIIQ{_TIMES}Q")
_SLOTS_PER_BUCKET = 8
_BUCKET_SIZE = _SLOT.size * _SLOTS_PER_BUCKET
BUCKETS = 4096
_EMPTY = bytes(16)
_FULL_WARNING_EVERY = 60.0
_LOCATED_MAX = 10_000


def _boot_id() -> bytes:
    """This boot of the machine's kernel (Linux); zeros where it cannot be told (then a
    table from an earlier boot is recognised only by times that lie ahead of the clock)."""
    try:
        return uuid.UUID(Path("/proc/sys/kernel/random/boot_id").read_text().strip()).bytes
    except (OSError, ValueError):
        return _EMPTY


@dataclass
class _Slot:
    offset: int
    tag: bytes
    times: list[int] = field(default_factory=list)  # oldest first
    folded: int = 0
    folded_last: int = 0

    @property
    def count(self) -> int:
        return self.folded + len(self.times)

    def prune(self, now: int, window: int) -> None:
        """Drop the failures that left the window (and times ahead of the clock: of
        another boot)."""
        horizon = now - window
        self.times = [t for t in self.times if horizon < t <= now]
        if self.folded and not horizon < self.folded_last <= now:
            self.folded, self.folded_last = 0, 0

    def wait(self, limit: int, window: int, now: int) -> int:
        """Nanoseconds until fewer than `limit` failures remain in the window."""
        excess = self.count - limit
        if excess < 0:
            return 0
        if excess < self.folded:
            return self.folded_last + window - now
        return self.times[excess - self.folded] + window - now

    def free_at(self, window: int) -> int:
        """When the last failure leaves the window."""
        return max(self.times[-1] if self.times else 0, self.folded_last if self.folded else 0) + window

    def add(self, when: int) -> None:
        if len(self.times) == _TIMES:
            self.folded += 1
            self.folded_last = max(self.folded_last, self.times.pop(0))
        bisect.insort(self.times, when)

    def remove(self, when: int) -> None:
        if when in self.times:
            self.times.remove(when)
        elif self.folded and when <= self.folded_last:
            self.folded -= 1
            if not self.folded:
                self.folded_last = 0


class MachineLoginThrottle:
    """`Throttle` shared by every process of one machine (see the module's docstring).
    `clock` gives nanoseconds (tests pass their own); `buckets` sizes the table (every
    process of a machine must use the same)."""

    def __init__(
        self,
        path: Path,
        limit: int,
        window: float,
        *,
        clock: Callable[[], int] = time.monotonic_ns,
        buckets: int = BUCKETS,
    ):
        self.limit = limit
        self.window = window
        self._window_ns = max(1, int(window * 1e9))
        self._clock = clock
        self._buckets = buckets
        self._warned_full = -_FULL_WARNING_EVERY
        size = _HEADER_SIZE + buckets * _BUCKET_SIZE
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            with self._locked(fcntl.LOCK_EX):
                # Only ever grown: a process still mapping a longer file must not fault.
                if os.fstat(self._fd).st_size < size:
                    os.ftruncate(self._fd, size)
                self._map = mmap.mmap(self._fd, size)
                magic, boot, known_buckets, hash_key = _HEADER.unpack_from(self._map)
                if (magic, boot, known_buckets) != (_MAGIC, _boot_id(), buckets):
                    hash_key = secrets.token_bytes(32)
                    self._map[_HEADER_SIZE:size] = bytes(size - _HEADER_SIZE)
                    _HEADER.pack_into(self._map, 0, _MAGIC, _boot_id(), buckets, hash_key)
        except BaseException:
            os.close(self._fd)
            raise
        self._hash_key = bytes(hash_key)
        self._located: dict[str, tuple[bytes, tuple[int, int]]] = {}  # key → its tag and buckets

    @contextmanager
    def _locked(self, operation: int) -> Iterator[None]:
        fcntl.flock(self._fd, operation)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    # --- slots --------------------------------------------------------------------------

    def _locate(self, key: str) -> tuple[bytes, tuple[int, int]]:
        located = self._located.get(key)
        if located is None:
            digest = hashlib.blake2b(key.encode(), key=self._hash_key, digest_size=24).digest()
            tag = digest[:16] if digest[:16] != _EMPTY else b"\x01" + digest[1:16]
            first = int.from_bytes(digest[16:20], "little") % self._buckets
            second = int.from_bytes(digest[20:24], "little") % self._buckets
            if len(self._located) >= _LOCATED_MAX:
                self._located.clear()
            located = self._located[key] = (tag, (first, second))
        return located

    def _bucket_offset(self, bucket: int) -> int:
        return _HEADER_SIZE + bucket * _BUCKET_SIZE

    def _read(self, offset: int) -> _Slot:
        tag, stored, folded, folded_last, *times = _SLOT.unpack_from(self._map, offset)
        # A process killed in the middle of a write may have left nonsense: bounded here.
        return _Slot(offset, tag, sorted(times[: min(stored, _TIMES)]), folded, folded_last)

    def _write(self, slot: _Slot) -> None:
        if not slot.count:
            self._map[slot.offset : slot.offset + _SLOT.size] = bytes(_SLOT.size)
            return
        times = slot.times + [0] * (_TIMES - len(slot.times))
        _SLOT.pack_into(self._map, slot.offset, slot.tag, len(slot.times), slot.folded, slot.folded_last, *times)

    def _find(self, tag: bytes, buckets: tuple[int, int]) -> _Slot | None:
        for bucket in dict.fromkeys(buckets):
            start = self._bucket_offset(bucket)
            contents = self._map[start : start + _BUCKET_SIZE]  # a copy searches faster than the map
            at = contents.find(tag)
            while at >= 0:
                if at % _SLOT.size == 0:
                    return self._read(start + at)
                at = contents.find(tag, at + 1)
        return None

    def _place(self, buckets: tuple[int, int], taken: set[int], now: int) -> int | None:
        """A free slot for a new key in the emptier of its buckets, or None."""
        best: list[int] = []
        for bucket in dict.fromkeys(buckets):
            free = []
            for index in range(_SLOTS_PER_BUCKET):
                offset = self._bucket_offset(bucket) + index * _SLOT.size
                if offset in taken:
                    continue
                if self._map[offset : offset + 16] == _EMPTY:
                    free.append(offset)
                    continue
                slot = self._read(offset)
                slot.prune(now, self._window_ns)
                if not slot.count:
                    free.append(offset)
            if len(free) > len(best):
                best = free
        return best[0] if best else None

    def _until_a_slot_frees(self, buckets: tuple[int, int], now: int) -> int:
        soonest = min(
            self._read(self._bucket_offset(bucket) + index * _SLOT.size).free_at(self._window_ns)
            for bucket in buckets
            for index in range(_SLOTS_PER_BUCKET)
        )
        if now - self._warned_full >= _FULL_WARNING_EVERY * 1e9:
            self._warned_full = now
            log.warning(
                "the table of failed attempts is full where a new key goes: attempts for new accounts and"
                " addresses there are refused until failures leave the window (many failing addresses at once?)"
            )
        return max(1, soonest - now)

    # --- Throttle -------------------------------------------------------------------------

    async def check(self, keys: Iterable[str]) -> None:
        wait = 0
        with self._locked(fcntl.LOCK_SH):
            now = self._clock()
            for key in dict.fromkeys(keys):
                slot = self._find(*self._locate(key))
                if slot is not None:
                    slot.prune(now, self._window_ns)
                    wait = max(wait, slot.wait(self.limit, self._window_ns, now))
        if wait > 0:
            raise too_many_failures(wait / 1e9)

    async def reserve(self, keys: Iterable[str]) -> Reservation:
        unique = tuple(dict.fromkeys(keys))
        wait = 0
        with self._locked(fcntl.LOCK_EX):
            now = self._clock()
            planned: list[_Slot] = []
            taken: set[int] = set()
            for key in unique:
                tag, buckets = self._locate(key)
                slot = self._find(tag, buckets)
                if slot is None:
                    offset = self._place(buckets, taken, now)
                    if offset is None:
                        wait = max(wait, self._until_a_slot_frees(buckets, now))
                        continue
                    slot = _Slot(offset, tag)
                slot.prune(now, self._window_ns)
                wait = max(wait, slot.wait(self.limit, self._window_ns, now))
                taken.add(slot.offset)
                planned.append(slot)
            if wait == 0:
                # Written only once every key has passed: a refused attempt counts nowhere.
                for slot in planned:
                    slot.add(now)
                    self._write(slot)
        if wait > 0:
            raise too_many_failures(wait / 1e9)
        return Reservation(unique, now)

    async def release(self, reservation: Reservation) -> None:
        with self._locked(fcntl.LOCK_EX):
            for key in reservation.keys:
                slot = self._find(*self._locate(key))
                if slot is not None:
                    slot.remove(reservation.mark)
                    self._write(slot)

    async def forget(self, key: str) -> None:
        # Every successful login forgets its account, which has no failures as a rule: a
        # shared look first spares the processes' logins waiting on one another.
        with self._locked(fcntl.LOCK_SH):
            if self._find(*self._locate(key)) is None:
                return
        with self._locked(fcntl.LOCK_EX):
            slot = self._find(*self._locate(key))
            if slot is not None:
                self._map[slot.offset : slot.offset + _SLOT.size] = bytes(_SLOT.size)

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)
