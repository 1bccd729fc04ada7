"""The composition root: settings → stores → services → ASGI app.

The only module that names concrete implementations (`storage.fs`, `meta.sql`).
"""

from __future__ import annotations

import asyncio
import logging
import sys

from starlette.types import ASGIApp

from portside.auth.access import OpenRegistry
from portside.config import Settings, received_settings
from portside.http.app import build_app
from portside.http.services import Services
from portside.meta.sql.engine import create_engine
from portside.meta.sql.migrate import upgrade
from portside.meta.sql.store import SqlDatabase
from portside.registry.blobs import BlobService
from portside.registry.catalog import CatalogService
from portside.registry.manifests import ManifestService
from portside.registry.uploads import UploadService
from portside.storage.fs import FsBlobStore

__all__ = ["build", "serve_app", "migrate", "upgrade_database", "configure_logging"]


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("portside")
    root.handlers[:] = [handler]
    root.propagate = False
    root.setLevel(settings.log_level.upper())
    # Request lines are info; turning them off must not silence warnings.
    logging.getLogger("portside.access").disabled = not settings.log_requests


def build(settings: Settings) -> ASGIApp:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = FsBlobStore(settings.data_dir)
    database = SqlDatabase(create_engine(settings.sqlalchemy_url))
    services = Services(
        blobs=BlobService(store, database, database),
        uploads=UploadService(store, database),
        manifests=ManifestService(database, settings.max_manifest_bytes),
        catalog=CatalogService(database),
        authorizer=OpenRegistry(),
        readiness_checks={"storage": store.check, "database": database.check},
        log_requests=settings.log_requests,
    )
    return build_app(services, on_shutdown=database.close)


async def upgrade_database(settings: Settings) -> None:
    """Bring the database schema up to date (the server does this at start)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.sqlalchemy_url, pool_size=1)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def migrate(settings: Settings) -> None:
    asyncio.run(upgrade_database(settings))


def serve_app() -> ASGIApp:
    """Granian's factory in each server process: the app for the settings `serve` handed off."""
    settings = received_settings()
    configure_logging(settings)
    return build(settings)
