"""Locks held across instances through Redis: exclusion, leases, dead holders, outages."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from portside.coord.redis import RedisCoordinator
from portside.errors import Unavailable
from tests.backing import Redis
from tests.coord.conftest import Instances
from tests.servers import free_port

ROOT = Path(__file__).parents[2]


async def test_instances_exclude_each_other(instances: Instances) -> None:
    a, b = instances(), instances()
    inside, most, total = 0, 0, 0

    async def critical(coordinator: RedisCoordinator) -> None:
        nonlocal inside, most, total
        async with coordinator.locks.hold("blob:sha256:x"):
            inside += 1
            most = max(most, inside)
            seen = total
            await asyncio.sleep(0.002)
            total = seen + 1  # a lost update if two were inside at once
            inside -= 1

    await asyncio.gather(*(critical(c) for _ in range(10) for c in (a, b)))
    assert (most, total) == (1, 20)


async def test_other_keys_do_not_wait(instances: Instances) -> None:
    a, b = instances(), instances()
    async with a.locks.hold("upload:1"):
        async with asyncio.timeout(1):
            async with b.locks.hold("upload:2"):
                pass


async def test_a_held_lock_outlives_its_lease(instances: Instances) -> None:
    a, b = instances(lock_lease=0.5), instances(lock_lease=0.5)
    async with a.locks.hold("upload:long"):
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.2):  # more than two leases: renewed meanwhile
                async with b.locks.hold("upload:long"):
                    pass
    started = time.monotonic()
    async with b.locks.hold("upload:long"):
        assert time.monotonic() - started < 0.4  # released, not expired


async def test_letting_go_during_a_renewal_does_not_hang(instances: Instances) -> None:
    # Leases of 30 ms are renewed every 10 ms, so many of these releases land while a
    # renewal is on its way to Redis; each must still end at once.
    a = instances(lock_lease=0.03)
    async with asyncio.timeout(20):
        for round_ in range(600):
            async with a.locks.hold("upload:busy"):
                await asyncio.sleep((round_ % 7) * 0.002)


_HOLDER = """
import asyncio, sys
from portside.coord.redis import RedisCoordinator

async def main():
    coordinator = RedisCoordinator.from_url(sys.argv[1], sys.argv[2], lock_lease=1.0)
    async with coordinator.locks.hold("blob:held"):
        print("held", flush=True)
        await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_a_dead_holder_loses_the_lock_when_its_lease_runs_out(
    instances: Instances, redis_server: Redis, prefix: str
) -> None:
    b = instances()
    argv = [sys.executable, "-c", _HOLDER, redis_server.url, prefix]
    with subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE) as holder:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        try:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):  # alive, it holds
                    async with b.locks.hold("blob:held"):
                        pass
        finally:
            os.kill(holder.pid, signal.SIGKILL)  # dies: no release, no more renewals
    died = time.monotonic()
    async with asyncio.timeout(2):
        async with b.locks.hold("blob:held"):
            assert time.monotonic() - died <= 1.0 + 0.3  # its lease


async def test_an_unreachable_redis_fails_fast_with_503(prefix: str) -> None:
    coordinator = RedisCoordinator.from_url(f"redis://127.0.0.1:{free_port()}/0", prefix, timeout=0.2)
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable) as raised:
            async with coordinator.locks.hold("upload:x"):
                pass
        assert raised.value.status == 503 and raised.value.headers["Retry-After"]
        with pytest.raises(Unavailable):
            await coordinator.check()
        assert time.monotonic() - started < 2
    finally:
        await coordinator.close()


async def test_a_silent_redis_times_out_then_fails_at_once(prefix: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never answers
        port = silent.getsockname()[1]
        coordinator = RedisCoordinator.from_url(f"redis://127.0.0.1:{port}/0", prefix, timeout=0.2)
        try:
            started = time.monotonic()
            with pytest.raises(Unavailable):
                await coordinator.login_throttle(5, 60).check(["account:x"])
            assert time.monotonic() - started < 1.5  # the timeout, one retry; no hang
            started = time.monotonic()
            with pytest.raises(Unavailable):
                async with coordinator.locks.hold("upload:x"):
                    pass
            assert await coordinator.registry_changes.current() is None  # caches go to the database
            assert time.monotonic() - started < 0.1  # right after a failure, no waiting at all
        finally:
            await coordinator.close()
