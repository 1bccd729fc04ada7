"""The optional client libraries that settings need, and the extras that install them.

One machine runs on the filesystem and SQLite and installs none of them. Scaling out adds
them: `portside[s3]` (aiobotocore), `portside[postgres]` (asyncpg), `portside[redis]`
(redis), or `portside[scale]` for all three. A setting that needs one that is missing is
refused when a command starts, with the extra to install, not with an ImportError from
deep inside the first request. Checking imports nothing (the supervisor of `portside
serve` must stay small).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from portside.config import Settings

__all__ = ["MissingExtra", "Extra", "needed_extras", "require_extras"]


@dataclass(frozen=True)
class Extra:
    name: str  # as in `pip install 'portside[NAME]'`
    module: str  # what it installs, as imported
    setting: str  # the setting that needs it, as the operator wrote it


class MissingExtra(Exception):
    """Settings that need client libraries this installation lacks; says what to install."""

    def __init__(self, missing: list[Extra]) -> None:
        names = ",".join(extra.name for extra in missing)
        needs = "; ".join(
            f"{extra.setting} needs the {extra.module} library (portside[{extra.name}])" for extra in missing
        )
        super().__init__(
            f"{needs}; not installed here. Install with `pip install 'portside[{names}]'`"
            f" (in a clone of Portside: `./scripts/install '.[{names}]'`); portside[scale] installs"
            " the libraries of S3, PostgreSQL and Redis at once"
        )
        self.missing = missing


def needed_extras(settings: Settings) -> list[Extra]:
    """The extras `settings` need, installed or not."""
    needed = []
    if settings.storage_url is not None and settings.storage_url.startswith("s3://"):
        needed.append(Extra("s3", "aiobotocore", f"storage_url {settings.storage_url}"))
    if settings.sqlalchemy_url.startswith("postgresql+asyncpg://"):
        needed.append(Extra("postgres", "asyncpg", "database_url postgresql://…"))  # it may hold a password
    if settings.redis_url:
        needed.append(Extra("redis", "redis", "redis_url"))
    return needed


def require_extras(settings: Settings) -> None:
    """Raise MissingExtra when `settings` need a library that is not installed."""
    missing = [extra for extra in needed_extras(settings) if importlib.util.find_spec(extra.module) is None]
    if missing:
        raise MissingExtra(missing)
