"""Failed attempts counted with the same rules in this process, by every process of one
machine (the memory-mapped table), and by every instance (Redis)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from portside.auth.throttle import LoginThrottle, Throttle
from portside.coord.throttle import MachineLoginThrottle
from portside.errors import TooManyRequests
from tests.coord.conftest import Instances

ROOT = Path(__file__).parents[2]
ACCOUNT, CLIENT, OTHER_CLIENT = "account:alice", "client:10.0.0.1", "client:10.0.0.2"
SECOND = 1_000_000_000


class Clock:
    """Nanoseconds that move only when a test moves them."""

    def __init__(self) -> None:
        self.now = 1_000 * SECOND

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * SECOND)


async def _refused(throttle: Throttle, *keys: str, reserving: bool = False) -> int:
    with pytest.raises(TooManyRequests) as raised:
        if reserving:
            await throttle.reserve(keys)
        else:
            await throttle.check(keys)
    return int(raised.value.headers["Retry-After"])


# --- the rules, for every implementation -----------------------------------------------

Kind = Callable[[int, float], Throttle]


@pytest.fixture
def opened(tmp_path: Path) -> Iterator[list[MachineLoginThrottle]]:
    tables: list[MachineLoginThrottle] = []
    yield tables
    for table in tables:
        table.close()


@pytest.fixture(params=["process", "machine", "redis"])
def kind(request: pytest.FixtureRequest, tmp_path: Path, opened: list[MachineLoginThrottle]) -> Kind:
    """Makes throttles of one kind that share their counts (two calls: two processes or
    instances; in-process, one throttle stands for both)."""
    if request.param == "process":
        shared: dict[tuple[int, float], LoginThrottle] = {}
        return lambda limit, window: shared.setdefault((limit, window), LoginThrottle(limit, window))
    if request.param == "machine":

        def table(limit: int, window: float) -> Throttle:
            opened.append(MachineLoginThrottle(tmp_path / "locks" / "attempts.table", limit, window))
            return opened[-1]

        return table
    instances: Instances = request.getfixturevalue("instances")
    return lambda limit, window: instances().login_throttle(limit, window)


async def test_failures_through_any_process_add_up(kind: Kind) -> None:
    a, b = kind(3, 30), kind(3, 30)
    await a.reserve([ACCOUNT, CLIENT])
    await b.reserve([ACCOUNT, CLIENT])
    await a.check([ACCOUNT, CLIENT])
    await a.reserve([ACCOUNT, CLIENT])
    assert 29 <= await _refused(b, ACCOUNT, OTHER_CLIENT) <= 30
    assert 29 <= await _refused(a, "account:bob", CLIENT, reserving=True) <= 30
    await b.check(["account:bob", OTHER_CLIENT])
    await a.forget(ACCOUNT)  # a success forgets the account, not the address
    await b.check([ACCOUNT, OTHER_CLIENT])
    await _refused(b, ACCOUNT, CLIENT)


async def test_a_refused_attempt_counts_against_no_key(kind: Kind) -> None:
    a, b = kind(2, 30), kind(2, 30)
    await a.reserve([ACCOUNT])
    await a.reserve([ACCOUNT])
    for _ in range(5):
        await _refused(b, ACCOUNT, CLIENT, reserving=True)
    await b.reserve([CLIENT])  # the address counted none of the refused ones
    await b.check([CLIENT])


async def test_a_released_reservation_is_no_failure(kind: Kind) -> None:
    a, b = kind(2, 30), kind(2, 30)
    kept = await a.reserve([ACCOUNT, CLIENT])
    right = await b.reserve([ACCOUNT, CLIENT])
    await _refused(a, ACCOUNT)  # both count while they are judged
    await b.release(right)
    await a.check([ACCOUNT, CLIENT])
    await a.reserve([CLIENT])
    await _refused(b, CLIENT)  # the kept one and the new one
    await a.release(kept)
    await b.check([ACCOUNT, CLIENT])


async def test_parallel_attempts_are_counted_exactly(kind: Kind) -> None:
    limit = 4
    throttles = [kind(limit, 30) for _ in range(3)]

    async def attempt(throttle: Throttle) -> bool:
        try:
            await throttle.reserve([ACCOUNT, f"client:{id(throttle)}"])
        except TooManyRequests:
            return False
        return True

    passed = await asyncio.gather(*(attempt(t) for _ in range(8) for t in throttles))
    assert sum(passed) == limit


async def test_failures_leave_the_window_in_real_time(kind: Kind) -> None:
    window = 0.6
    throttle = kind(2, window)
    await throttle.reserve([ACCOUNT])
    await asyncio.sleep(window / 2)
    await throttle.reserve([ACCOUNT])
    assert await _refused(throttle, ACCOUNT) == 1  # whole seconds, at least one
    await asyncio.sleep(window * 2 / 3)  # the first failure left the window; the second remains
    await throttle.reserve([ACCOUNT])
    await _refused(throttle, ACCOUNT)
    await asyncio.sleep(window + 0.2)
    await throttle.check([ACCOUNT])


async def test_a_redis_key_keeps_only_its_window(instances: Instances, prefix: str) -> None:
    coordinator = instances()
    throttle = coordinator.login_throttle(3, 0.5)
    for _ in range(10):
        try:
            await throttle.reserve([CLIENT])
        except TooManyRequests:
            pass
    client = coordinator._link.client
    key = f"{prefix}throttle:{CLIENT}"
    assert await client.zcard(key) == 3
    assert 0 < await client.pttl(key) <= 500


# --- the machine's table -----------------------------------------------------------------


def _table(
    path: Path, opened: list[MachineLoginThrottle], limit: int, window: float, clock: Clock, buckets: int = 4096
) -> MachineLoginThrottle:
    opened.append(MachineLoginThrottle(path, limit, window, clock=clock, buckets=buckets))
    return opened[-1]


async def test_the_table_counts_by_its_clock_and_retry_after_tells_when(
    tmp_path: Path, opened: list[MachineLoginThrottle]
) -> None:
    clock = Clock()
    table = _table(tmp_path / "t", opened, 3, 100, clock=clock)
    for _ in range(3):
        await table.reserve([ACCOUNT])
        clock.advance(10)
    assert await _refused(table, ACCOUNT, reserving=True) == 70  # the first leaves at 100 s
    clock.advance(69.5)
    assert await _refused(table, ACCOUNT) == 1
    clock.advance(0.5)  # the first failure is exactly 100 s old: out
    await table.reserve([ACCOUNT])
    assert await _refused(table, ACCOUNT) == 10  # the second leaves 10 s later


async def test_the_table_outlives_its_processes_but_not_a_reboot(
    tmp_path: Path, opened: list[MachineLoginThrottle]
) -> None:
    path = tmp_path / "locks" / "attempts.table"
    clock = Clock()
    first = _table(path, opened, 2, 100, clock=clock)
    await first.reserve([ACCOUNT, CLIENT])
    await first.reserve([ACCOUNT, CLIENT])
    first.close()
    opened.remove(first)
    restarted = _table(path, opened, 2, 100, clock=clock)  # a worker that replaced it
    await _refused(restarted, ACCOUNT)
    restarted.close()
    opened.remove(restarted)

    raw = bytearray(path.read_bytes())
    assert b"alice" not in raw and b"10.0.0.1" not in raw  # keys are stored as keyed hashes
    raw[8:24] = bytes(16)  # the header's boot id: written under another boot of the machine
    path.write_bytes(bytes(raw))
    after_reboot = _table(path, opened, 2, 100, clock=clock)
    await after_reboot.check([ACCOUNT, CLIENT])  # its times meant another clock: started afresh


async def test_a_full_table_refuses_new_keys_and_forgets_no_one(
    tmp_path: Path, opened: list[MachineLoginThrottle]
) -> None:
    """One bucket of eight slots: the table is full after eight keys. Flooding it with other
    keys must never reset a key's count, so the ninth key is refused, not let through
    uncounted, and nothing is evicted."""
    clock = Clock()
    table = _table(tmp_path / "t", opened, 3, 100, clock=clock, buckets=1)
    await table.reserve([ACCOUNT])
    await table.reserve([ACCOUNT])
    for n in range(7):
        clock.advance(1)
        await table.reserve([f"client:flood-{n}"])
    clock.advance(1)
    for n in range(7, 50):  # the flood goes on: refused until a slot frees
        assert await _refused(table, f"client:flood-{n}", reserving=True) == 92  # the account's failures leave at 100 s
    await table.reserve([ACCOUNT])  # a key in the table is still counted…
    assert await _refused(table, ACCOUNT, reserving=True) == 92  # …exactly: its count survived the flood
    await table.reserve(["client:flood-3"])
    clock.advance(92)  # the account's first two failures leave the window; its third remains
    await _refused(table, "client:new", reserving=True)  # every slot still holds a live key
    clock.advance(1)  # flood-0 is out: its slot is free
    await table.reserve(["client:new"])
    await table.reserve([ACCOUNT])
    await table.reserve([ACCOUNT])
    assert await _refused(table, ACCOUNT, reserving=True) == 7  # its failure of the flood's time still counts


async def test_a_full_table_frees_slots_as_failures_leave_the_window(
    tmp_path: Path, opened: list[MachineLoginThrottle]
) -> None:
    clock = Clock()
    table = _table(tmp_path / "t", opened, 2, 100, clock=clock, buckets=1)
    reservations = [await table.reserve([f"client:{n}"]) for n in range(8)]
    await _refused(table, "client:late", reserving=True)
    await table.release(reservations[5])  # a right password: its slot is free again
    await table.reserve(["client:late"])
    await _refused(table, "client:later", reserving=True)
    await table.forget("client:6")  # a success forgets a key: its slot is free too
    await table.reserve(["client:later"])
    clock.advance(100)
    for n in range(8):
        await table.reserve([f"client:again-{n}"])


async def test_limits_above_what_a_slot_holds_count_every_failure(
    tmp_path: Path, opened: list[MachineLoginThrottle]
) -> None:
    """A slot keeps twelve times; a higher limit folds the oldest into a count that lasts
    until the newest of them leaves the window: refused no later than exactly."""
    clock = Clock()
    table = _table(tmp_path / "t", opened, 20, 100, clock=clock)
    reservations = []
    for _ in range(20):
        reservations.append(await table.reserve([ACCOUNT]))
        clock.advance(1)
    await _refused(table, ACCOUNT, reserving=True)
    await table.release(reservations[0])  # folded: its count is taken back
    await table.release(reservations[19])  # stored
    await table.reserve([ACCOUNT])
    await table.reserve([ACCOUNT])
    await _refused(table, ACCOUNT, reserving=True)
    clock.advance(87)  # exactly, 13 would count now; the folded ones count until the newest of them leaves
    await _refused(table, ACCOUNT, reserving=True)
    clock.advance(1)  # it has: the 12 stored remain, as they would exactly
    for _ in range(8):
        await table.reserve([ACCOUNT])
    await _refused(table, ACCOUNT, reserving=True)


_ATTEMPTS = """
import asyncio, sys, time
from pathlib import Path
from portside.coord.throttle import MachineLoginThrottle
from portside.errors import TooManyRequests

async def main():
    table = MachineLoginThrottle(Path(sys.argv[1]), int(sys.argv[2]), 300)
    while time.time() < float(sys.argv[3]):
        pass
    passed = 0
    for n in range(int(sys.argv[4])):
        try:
            await table.reserve(["account:alice", f"client:{sys.argv[5]}"])
            passed += 1
        except TooManyRequests:
            pass
    print(passed)

asyncio.run(main())
"""


def test_processes_attempting_at_once_are_counted_exactly(tmp_path: Path) -> None:
    limit, processes, attempts = 7, 4, 6
    start = time.time() + 2
    running = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _ATTEMPTS,
                str(tmp_path / "attempts.table"),
                str(limit),
                str(start),
                str(attempts),
                str(n),
            ],
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        for n in range(processes)
    ]
    passed = [int(p.communicate(timeout=60)[0]) for p in running]
    assert sum(passed) == limit, passed
