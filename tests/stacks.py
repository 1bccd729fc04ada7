"""The two stacks the registry-level suites run on.

- `fs`: one machine's defaults, the filesystem and SQLite in the data directory;
- `scaled`: S3 (moto in server mode over HTTP), PostgreSQL and Redis, each a real server
  on loopback, started once per session; every Portside gets a database, a bucket and a
  Redis key prefix of its own.

`PORTSIDE_TEST_STACKS=fs` (or `scaled`) narrows a run to one of them.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from tests.backing import S3, S3_ENV, Postgres, Redis

STACKS = [s.strip() for s in os.environ.get("PORTSIDE_TEST_STACKS", "fs,scaled").split(",") if s.strip()]


class Backing:
    """PostgreSQL, Redis and S3 for the session, started on first use."""

    def __init__(self, root: Path):
        self.root = root
        self._postgres: Postgres | None = None
        self._redis: Redis | None = None
        self._s3: S3 | None = None

    @property
    def postgres(self) -> Postgres:
        if self._postgres is None:
            self._postgres = Postgres().start()
        return self._postgres

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            self._redis = Redis(self.root / "redis").start()
        return self._redis

    @property
    def s3(self) -> S3:
        if self._s3 is None:
            self._s3 = S3(self.root / "s3").start()
        return self._s3

    def scaled_env(self, shared: dict[str, str] | None = None) -> dict[str, str]:
        """Settings for a Portside on the scaled stack; pass one result to several
        instances (`shared`) to have them share a database, bucket and Redis."""
        if shared is not None:
            return dict(shared)
        return {
            **S3_ENV,
            "PORTSIDE_DATABASE_URL": self.postgres.create_database(),
            "PORTSIDE_STORAGE_URL": f"s3://{self.s3.create_bucket()}/registry",
            "PORTSIDE_S3_ENDPOINT_URL": self.s3.endpoint,
            "PORTSIDE_S3_PATH_STYLE": "true",
            "PORTSIDE_S3_PART_SIZE_MIB": "5",
            "PORTSIDE_REDIS_URL": self.redis.url,
            "PORTSIDE_REDIS_KEY_PREFIX": f"portside-{uuid.uuid4().hex[:8]}:",
        }

    def env(self, stack: str) -> dict[str, str]:
        return self.scaled_env() if stack == "scaled" else {}

    def stop(self) -> None:
        for service in (self._s3, self._redis, self._postgres):
            if service is not None:
                service.stop()
