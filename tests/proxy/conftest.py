"""The app in-process, a real CNCF Distribution registry as its upstream, and between them a
loopback proxy that counts the upstream's requests and can make it fail."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from portside import wiring
from portside.config import Settings, load_settings
from tests.mgmt.conftest import ADMIN, Harbor, lifespan
from tests.proxy.upstream import FaultyUpstream
from tests.servers import Distribution


@pytest.fixture
def upstream_registry(tmp_path: Path) -> Iterator[Distribution]:
    server = Distribution(data_dir=tmp_path / "upstream").start()
    yield server
    server.stop()


@pytest.fixture
def faulty(upstream_registry: Distribution) -> Iterator[FaultyUpstream]:
    proxy = FaultyUpstream(upstream_registry.url).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Short upstream timeouts: the hanging-upstream case waits this long, then serves the cache.
    return load_settings(
        data_dir=tmp_path / "portside",
        log_requests=False,
        admin_password=ADMIN[1],
        proxy_timeout_seconds=2.0,
        proxy_check_timeout_seconds=1.0,
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    await wiring.upgrade_database(settings)
    await wiring.bootstrap(settings)
    app = wiring.build(settings)
    async with lifespan(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portside") as c:
            yield c


@pytest.fixture
def harbor(client: httpx.AsyncClient) -> Harbor:
    return Harbor(client)
