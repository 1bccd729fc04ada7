"""A real redis-server per test module, and coordinators that stand for instances."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack

import pytest

from portside.coord.redis import RedisCoordinator
from tests.backing import Redis

Instances = Callable[..., RedisCoordinator]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redis]:
    server = Redis(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def prefix() -> str:
    """The deployment's key prefix, one per test."""
    return f"test-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
async def instances(redis_server: Redis, prefix: str) -> AsyncIterator[Instances]:
    """Makes coordinators over the module's Redis, one per simulated instance (each with a
    client of its own), and closes them after the test."""
    async with AsyncExitStack() as stack:

        def instance(**options: float) -> RedisCoordinator:
            coordinator = RedisCoordinator.from_url(redis_server.url, prefix, **options)
            stack.push_async_callback(coordinator.close)
            return coordinator

        yield instance
