"""Several Portside instances over one PostgreSQL, one Redis and one S3 bucket, behind nginx.

The cluster is the production topology in miniature: instances are stateless and share
everything through the backing services; nginx balances round robin on loopback.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.backing import Nginx
from tests.servers import Portside, free_port
from tests.stacks import Backing


@dataclass
class Cluster:
    instances: list[Portside]
    balancer: Nginx

    @property
    def url(self) -> str:
        return self.balancer.url

    @property
    def host(self) -> str:
        return self.balancer.host

    def stop(self) -> None:
        self.balancer.stop()
        for instance in self.instances:
            instance.stop()


def start_cluster(
    root: Path, backing: Backing, size: int = 3, open_registry: bool = False, env: dict[str, str] | None = None
) -> Cluster:
    """`size` instances sharing one database, bucket and Redis, with settings `env` besides."""
    shared = {**backing.scaled_env(), **(env or {})}
    balancer_port = free_port()
    # Clients reach the cluster through the balancer, so that is where tokens come from.
    shared["PORTSIDE_EXTERNAL_URL"] = f"http://127.0.0.1:{balancer_port}"
    instances = [
        Portside(data_dir=root / f"instance{n}" / "data", env=dict(shared), open_registry=open_registry)
        for n in range(size)
    ]
    # All at once, as a fleet starts: the first start migrates the empty database and
    # creates the admin, the library project and the token key; the others must wait or
    # take theirs, never fail.
    with ThreadPoolExecutor(len(instances)) as pool:
        list(pool.map(lambda instance: instance.start(), instances))
    balancer = Nginx(root / "nginx", [i.host for i in instances], port=balancer_port).start()
    return Cluster(instances, balancer)


@pytest.fixture
def cluster(tmp_path: Path, backing: Backing) -> Iterator[Cluster]:
    """Three instances with access control on, behind nginx."""
    running = start_cluster(tmp_path, backing)
    yield running
    running.stop()
