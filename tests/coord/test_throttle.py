"""Failed logins counted across instances, with the in-process throttle's rules."""

from __future__ import annotations

import asyncio

import pytest

from portside.auth.throttle import LoginThrottle, Throttle
from portside.errors import TooManyRequests
from tests.coord.conftest import Instances

ACCOUNT, CLIENT, OTHER_CLIENT = "account:alice", "client:10.0.0.1", "client:10.0.0.2"


async def _refused(throttle: Throttle, *keys: str) -> int:
    with pytest.raises(TooManyRequests) as raised:
        await throttle.check(keys)
    return int(raised.value.headers["Retry-After"])


async def test_failures_through_any_instance_add_up(instances: Instances) -> None:
    a, b = instances().login_throttle(3, 30), instances().login_throttle(3, 30)
    await a.failed([ACCOUNT, CLIENT])
    await b.failed([ACCOUNT, CLIENT])
    await a.check([ACCOUNT, CLIENT])
    await a.failed([ACCOUNT, CLIENT])
    assert 29 <= await _refused(b, ACCOUNT, OTHER_CLIENT) <= 30
    assert 29 <= await _refused(a, "account:bob", CLIENT) <= 30
    await b.check(["account:bob", OTHER_CLIENT])
    await a.succeeded(ACCOUNT)  # a success clears the account, not the address
    await b.check([ACCOUNT, OTHER_CLIENT])
    await _refused(b, ACCOUNT, CLIENT)


@pytest.mark.parametrize("shared", [True, False])
async def test_failures_leave_the_window(instances: Instances, shared: bool) -> None:
    window = 0.6
    throttle: Throttle = instances().login_throttle(2, window) if shared else LoginThrottle(2, window)
    await throttle.failed([ACCOUNT])
    await asyncio.sleep(window / 2)
    await throttle.failed([ACCOUNT])
    assert await _refused(throttle, ACCOUNT) == 1  # whole seconds, at least one
    await asyncio.sleep(window * 2 / 3)  # the first failure left the window; the second remains
    await throttle.check([ACCOUNT])
    await throttle.failed([ACCOUNT])
    await _refused(throttle, ACCOUNT)
    await asyncio.sleep(window + 0.2)
    await throttle.check([ACCOUNT])


async def test_a_key_keeps_only_its_last_failures_and_expires(instances: Instances, prefix: str) -> None:
    coordinator = instances()
    throttle = coordinator.login_throttle(3, 0.5)
    for _ in range(10):
        await throttle.failed([CLIENT])
    client = coordinator._link.client
    key = f"{prefix}throttle:{CLIENT}"
    assert await client.zcard(key) == 3
    assert 0 < await client.pttl(key) <= 500
