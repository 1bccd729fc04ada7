"""What `portside serve` does once before its server processes start: bring the schema up to
date, create the built-in admin and the `library` project on first start, make the
token signing key exist, and check the keys configured to sign on push.

It runs in a process of its own (cli `start-up`), so it imports only the stores it needs:
not the web framework, the services or the UI, which the server processes load themselves.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from portside.auth.passwords import hash_password, new_robot_secret, password_problem
from portside.auth.tokens import load_or_create_key, new_key_pem, write_key
from portside.config import Settings
from portside.errors import Conflict
from portside.extras import require_extras
from portside.meta.sql.accounts import SqlAccounts
from portside.meta.sql.engine import create_engine
from portside.meta.sql.keys import SqlKeys
from portside.mgmt.signing_keys import CommandKey, SigningFailed, SigningKey, load_plugin

__all__ = [
    "ADMIN_USERNAME",
    "LIBRARY_PROJECT",
    "bootstrap",
    "check_signing_keys",
    "configure_logging",
    "has_schema",
    "load_or_create_signing_key",
    "migrate",
    "site_signing_keys",
    "upgrade_database",
]

ADMIN_USERNAME = "admin"
LIBRARY_PROJECT = "library"


def load_or_create_signing_key(settings: Settings) -> None:
    """Make the token signing key exist before server processes start (they share it).

    Instances that share a database (several machines behind a load balancer) share the
    key through it, unless a key file is configured: the first instance to start creates
    it and every instance keeps a copy at `signing_key_path` for its server processes."""
    if settings.token_key_file is None and _shared_database(settings):
        pem = asyncio.run(_shared_signing_key(settings))
        write_key(settings.signing_key_path, pem, replace=True)
    load_or_create_key(settings.signing_key_path)


def _shared_database(settings: Settings) -> bool:
    return not settings.sqlalchemy_url.startswith("sqlite")


async def _shared_signing_key(settings: Settings) -> str:
    engine = create_engine(settings.sqlalchemy_url, pool_size=1)
    try:
        return await SqlKeys(engine).get_or_create("token", new_key_pem())
    finally:
        await engine.dispose()


async def bootstrap(settings: Settings) -> str | None:
    """First start: the built-in admin and the public `library` project.

    Returns the admin's password when it was generated here (to be shown once), else None."""
    engine = create_engine(settings.sqlalchemy_url, pool_size=1)
    accounts = SqlAccounts(engine)
    generated = None
    try:
        admin = await accounts.get_user(ADMIN_USERNAME)
        if admin is None:
            password = settings.admin_password
            if password is None:
                generated = password = new_robot_secret()[:24]
            elif problem := password_problem(password):
                raise ValueError(f"admin password: {problem}")
            try:
                admin = await accounts.create_user(
                    ADMIN_USERNAME,
                    hash_password(password),
                    email=None,
                    realname="System Administrator",
                    comment="built-in administrator",
                    sysadmin=True,
                )
            except Conflict:
                # Another instance, starting at the same moment, made it first.
                generated = None
                admin = await accounts.get_user(ADMIN_USERNAME)
                assert admin is not None
        if await accounts.get_project(LIBRARY_PROJECT) is None:
            try:
                await accounts.create_project(LIBRARY_PROJECT, admin.user_id, {"public": "true"})
            except Conflict:
                pass  # made by another instance starting at the same moment
    finally:
        await engine.dispose()
    return generated


async def has_schema(settings: Settings) -> bool:
    engine = create_engine(settings.sqlalchemy_url, pool_size=1)
    try:
        from portside.meta.sql.migrate import has_schema  # with Alembic, as for upgrade_database

        return await has_schema(engine)
    finally:
        await engine.dispose()


async def upgrade_database(settings: Settings) -> None:
    """Bring the database schema up to date (the server does this at start)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.sqlalchemy_url, pool_size=1)
    try:
        # Imported here: Alembic (and Mako, Pygments) weigh on every server process's
        # memory, and only this step needs them.
        from portside.meta.sql.migrate import upgrade

        await upgrade(engine)
    finally:
        await engine.dispose()


def migrate(settings: Settings) -> None:
    require_extras(settings)
    asyncio.run(upgrade_database(settings))


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("portside")
    root.handlers[:] = [handler]
    root.propagate = False
    root.setLevel(settings.log_level.upper())
    # Request lines are info; turning them off must not silence warnings.
    logging.getLogger("portside.access").disabled = not settings.log_requests


def site_signing_keys(settings: Settings) -> dict[str, SigningKey]:
    """The keys held outside Portside that sign on push (mgmt/signing_keys.py), by kind:
    the command's and the plug-in's, those configured; ValueError saying what is wrong."""
    keys: dict[str, SigningKey] = {}
    if settings.push_signer_command:
        pem = None
        if settings.push_signer_public_key_file is not None:
            try:
                pem = settings.push_signer_public_key_file.read_text()
            except OSError as error:
                raise ValueError(
                    f"push_signer_public_key_file {settings.push_signer_public_key_file}: {error.strerror}"
                ) from None
        keys["command"] = CommandKey(
            settings.push_signer_command,
            public_key=pem,
            public_key_command=settings.push_signer_public_key_command or None,
            signature_form=settings.push_signer_signature,
            input=settings.push_signer_command_input,
            timeout_seconds=settings.push_signer_timeout_seconds,
        )
    if settings.push_signer_plugin:
        keys["plugin"] = load_plugin(
            settings.push_signer_plugin, settings.push_signer_plugin_options, settings.push_signer_timeout_seconds
        )
    return keys


def check_signing_keys(settings: Settings) -> None:
    """Refuse to start with a signer that cannot even give its public key: every signature
    it made would be refused, and only the log would say why. ValueError saying which."""
    for kind, key in site_signing_keys(settings).items():
        try:
            asyncio.run(key.public_key_pem())
        except SigningFailed as error:
            raise ValueError(f"the {kind} signer: {error}") from None
