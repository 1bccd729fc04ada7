"""The metadata stores on both databases: every test here runs on SQLite and on PostgreSQL.

PostgreSQL is the session's one cluster (`tests.backing.Postgres`); each test gets a
database of its own, copied from a template migrated once. The databases collate by ICU's
en-US, as a typical production server does, so anything that orders names by the
database's locale instead of by bytes shows up here.

`stores` is one instance's set of stores; `instances(n)` opens n more engines on the same
database, the way several Portside processes share one.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from portside.meta.sql.accounts import SqlAccounts
from portside.meta.sql.artifacts import SqlArtifacts
from portside.meta.sql.engine import create_engine
from portside.meta.sql.migrate import upgrade
from portside.meta.sql.sessions import SqlSessions
from portside.meta.sql.store import SqlDatabase
from portside.oci import mediatypes as mt
from portside.oci.digest import Digest
from portside.oci.manifest import Manifest, parse_manifest
from tests.backing import Postgres
from tests.stacks import Backing

DIALECTS = ["sqlite", "postgresql"]


def asyncpg_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


def create_pg_database(pg: Postgres, template: str | None = None) -> str:
    """A new database: a copy of `template`, or empty with ICU en-US collation where the
    server has ICU (a copy keeps its template's collation)."""
    name = f"meta_{uuid.uuid4().hex[:12]}"
    if template is not None:
        pg.psql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return name
    icu = pg.psql(
        f"CREATE DATABASE \"{name}\" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'",
        check=False,
    )
    if icu.returncode != 0:
        pg.psql(f'CREATE DATABASE "{name}"')
    return name


def drop_pg_database(pg: Postgres, name: str) -> None:
    pg.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', check=False)


@pytest.fixture(scope="session")
def pg_template(backing: Backing) -> str:
    """A database migrated to head, for tests to copy (a copy takes less than a migration)."""
    pg = backing.postgres
    name = create_pg_database(pg)

    async def migrate() -> None:
        engine = create_engine(asyncpg_url(pg.url(name)), pool_size=1)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(migrate())
    return name


@dataclass
class Database:
    """A database of the test's own: its URL and dialect."""

    dialect: str
    url: str

    def engine(self) -> AsyncEngine:
        return create_engine(self.url, pool_size=4, max_overflow=4)


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def empty_database(dialect: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Database]:
    """A database with no schema at all."""
    if dialect == "sqlite":
        yield Database(dialect, f"sqlite+aiosqlite:///{tmp_path / 'meta.db'}")
        return
    pg: Postgres = request.getfixturevalue("backing").postgres
    name = create_pg_database(pg)
    yield Database(dialect, asyncpg_url(pg.url(name)))
    drop_pg_database(pg, name)


@pytest.fixture
def _database_copy(dialect: str, request: pytest.FixtureRequest) -> Iterator[str | None]:
    """PostgreSQL: a copy of the migrated template (made outside the test's event loop)."""
    if dialect == "sqlite":
        yield None
        return
    pg: Postgres = request.getfixturevalue("backing").postgres
    name = create_pg_database(pg, request.getfixturevalue("pg_template"))
    yield asyncpg_url(pg.url(name))
    drop_pg_database(pg, name)


@pytest.fixture
async def database(dialect: str, tmp_path: Path, _database_copy: str | None) -> Database:
    """A database migrated to head."""
    if _database_copy is not None:
        return Database(dialect, _database_copy)
    db = Database(dialect, f"sqlite+aiosqlite:///{tmp_path / 'meta.db'}")
    engine = db.engine()
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    return db


@dataclass
class Stores:
    """One instance's stores, on an engine of its own."""

    engine: AsyncEngine
    db: SqlDatabase
    accounts: SqlAccounts
    artifacts: SqlArtifacts
    sessions: SqlSessions

    @classmethod
    def open(cls, database: Database) -> Stores:
        engine = database.engine()
        return cls(engine, SqlDatabase(engine), SqlAccounts(engine), SqlArtifacts(engine), SqlSessions(engine))


@pytest.fixture
async def instances(database: Database) -> AsyncIterator[Callable[[int], list[Stores]]]:
    """`instances(n)`: n more instances on the test's database, closed after the test."""
    opened: list[Stores] = []

    def open_instances(n: int) -> list[Stores]:
        more = [Stores.open(database) for _ in range(n)]
        opened.extend(more)
        return more

    yield open_instances
    for stores in opened:
        await stores.engine.dispose()


@pytest.fixture
def stores(instances: Callable[[int], list[Stores]]) -> Stores:
    return instances(1)[0]


# --- content ------------------------------------------------------------------------------


def blob(text: str) -> tuple[Digest, int]:
    data = text.encode()
    return Digest.of(data), len(data)


def image(
    *layers: str,
    config: str = "{}",
    subject: Manifest | None = None,
    artifact_type: str | None = None,
    annotations: dict[str, str] | None = None,
) -> Manifest:
    """An OCI image manifest of a config and `layers` (the blobs' contents)."""

    def descriptor(media_type: str, text: str) -> dict[str, Any]:
        digest, size = blob(text)
        return {"mediaType": media_type, "digest": str(digest), "size": size}

    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", config),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer) for layer in layers],
    }
    if subject is not None:
        doc["subject"] = {"mediaType": subject.media_type, "digest": str(subject.digest), "size": len(subject.payload)}
    if artifact_type is not None:
        doc["artifactType"] = artifact_type
    if annotations is not None:
        doc["annotations"] = annotations
    payload = json.dumps(doc).encode()
    return parse_manifest(payload, mt.OCI_MANIFEST, Digest.of(payload))


def index(*children: Manifest) -> Manifest:
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [
            {
                "mediaType": c.media_type,
                "digest": str(c.digest),
                "size": len(c.payload),
                "platform": {"architecture": f"arch{i}", "os": "linux"},
            }
            for i, c in enumerate(children)
        ],
    }
    payload = json.dumps(doc).encode()
    return parse_manifest(payload, mt.OCI_INDEX, Digest.of(payload))


async def push(db: SqlDatabase, repo: str, manifest: Manifest, tag: str | None = None) -> None:
    """Link what `manifest` needs (blobs only; children must be pushed first), then put it."""
    for descriptor in manifest.blobs:
        await db.link_blob(repo, descriptor.digest, descriptor.size)
    await db.put_manifest(repo, manifest, tag)


async def gather_all(*calls: Awaitable[Any]) -> list[Any]:
    """Run `calls` at once; their results and exceptions, in order."""
    return list(await asyncio.gather(*calls, return_exceptions=True))
