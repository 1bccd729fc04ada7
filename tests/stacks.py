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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
            # Crash tests kill instances holding upload locks; the next holder waits this long.
            "PORTSIDE_REDIS_LOCK_LEASE_SECONDS": "3",
        }

    def env(self, stack: str) -> dict[str, str]:
        return self.scaled_env() if stack == "scaled" else {}

    def stop(self) -> None:
        for service in (self._s3, self._redis, self._postgres):
            if service is not None:
                service.stop()


@dataclass(frozen=True)
class StoredObject:
    """One stored file or object of a server, outside its upload staging area."""

    name: str
    size: int
    read: Callable[[], bytes]


def stored_objects(data_dir: Path, env: dict[str, str], staging: frozenset[str]) -> Iterator[StoredObject]:
    """What a server keeps in its blob store: the data directory's files on `fs`, the
    bucket's objects on `scaled` (read with boto3, as an operator would)."""
    url = env.get("PORTSIDE_STORAGE_URL", "")
    if not url.startswith("s3://"):
        for dirpath, dirnames, filenames in os.walk(data_dir):
            dirnames[:] = [d for d in dirnames if d not in staging]
            for name in filenames:
                path = Path(dirpath) / name
                yield StoredObject(str(path), path.stat().st_size, path.read_bytes)
        return
    import boto3

    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    client = boto3.client(
        "s3",
        endpoint_url=env["PORTSIDE_S3_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
    )
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            if any(f"/{part}/" in f"/{key}" for part in staging):
                continue

            def read(key: str = key) -> bytes:
                return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())

            yield StoredObject(key, int(item["Size"]), read)
