"""The cast of the access-control suite and what Harbor says each of them may do.

Accounts are written straight into the server's database through the account stores
(SQLite in WAL mode lets this process write while the server runs), so the suite does
not depend on the management API. `expected()` is the one table of Harbor semantics the
tests check every answer against.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from portside.auth.passwords import hash_password, hash_secret, new_robot_secret
from portside.config import load_settings
from portside.meta.accounts import AuditQuery, AuditRecord, RobotPermission
from portside.meta.sql.accounts import SqlAccounts
from portside.meta.sql.engine import create_engine
from tests.servers import ADMIN_PASSWORD

T = TypeVar("T")

PUBLIC, PRIVATE, HIDDEN = "pub", "priv", "hidden"
PROJECTS = (PUBLIC, PRIVATE)  # the two projects of the matrix; `hidden` has admin alone
OPERATIONS = ("pull", "push", "delete", "catalog")

# Harbor's role ids and what each may do to a repository (limitedGuest and guest pull,
# developer pushes, maintainer and projectAdmin delete too).
PROJECT_ADMIN, DEVELOPER, GUEST, MAINTAINER, LIMITED_GUEST = 1, 2, 3, 4, 5
ROLE_ACTIONS = {
    PROJECT_ADMIN: {"pull", "push", "delete"},
    MAINTAINER: {"pull", "push", "delete"},
    DEVELOPER: {"pull", "push"},
    GUEST: {"pull"},
    LIMITED_GUEST: {"pull"},
}


@dataclass(frozen=True)
class Principal:
    """Someone who talks to the registry. `grants` maps project ("*": any) → actions."""

    key: str  # short id for test names and repository names
    username: str | None  # None: anonymous
    password: str | None = None
    kind: str = "user"  # "user", "robot", "anonymous"
    sysadmin: bool = False
    role: int | None = None  # the same role in `pub` and `priv`
    grants: dict[str, frozenset[str]] = field(default_factory=dict)
    can_login: bool = True

    @property
    def creds(self) -> str:
        assert self.username and self.password
        return f"{self.username}:{self.password}"

    def __str__(self) -> str:
        return self.key


def _user(key: str, role: int | None) -> Principal:
    grants = {p: frozenset(ROLE_ACTIONS[role]) for p in PROJECTS} if role else {}
    return Principal(key, f"u-{key}", f"Passw0rd-{key}", role=role, grants=grants)


def _robot(key: str, name: str, grants: dict[str, set[str]], can_login: bool = True) -> Principal:
    # Secrets are made once per test session (they are stored hashed).
    return Principal(
        key,
        name,
        new_robot_secret(),
        kind="robot",
        grants={p: frozenset(a) for p, a in grants.items()},
        can_login=can_login,
    )


ADMIN = Principal("admin", "admin", ADMIN_PASSWORD, sysadmin=True)
ANONYMOUS = Principal("anonymous", None, kind="anonymous")
PRINCIPALS: dict[str, Principal] = {
    p.key: p
    for p in (
        ADMIN,
        _user("padmin", PROJECT_ADMIN),
        _user("maintainer", MAINTAINER),
        _user("developer", DEVELOPER),
        _user("guest", GUEST),
        _user("lguest", LIMITED_GUEST),
        _user("outsider", None),
        ANONYMOUS,
        _robot("rpuller", "robot$priv+puller", {PRIVATE: {"pull"}}),
        _robot("rpusher", "robot$priv+pusher", {PRIVATE: {"pull", "push"}}),
        _robot("rcleaner", "robot$priv+cleaner", {PRIVATE: {"pull", "delete"}}),
        _robot("rsystem", "robot$sys-puller", {"*": {"pull"}}),
        _robot("rdisabled", "robot$priv+disabled", {PRIVATE: {"pull", "push", "delete"}}, can_login=False),
        _robot("rexpired", "robot$priv+expired", {PRIVATE: {"pull", "push", "delete"}}, can_login=False),
    )
}
# Accounts the audit test signs in with for the first time (logins of an account are
# audited when its credentials are checked, not on every remembered request).
AUDITOR = _user("auditor", DEVELOPER)
AUDIT_READER = _user("auditread", GUEST)
EXTRA_USERS = (AUDITOR, AUDIT_READER)


def expected(who: Principal, project: str, action: str) -> bool:
    """Harbor's answer: may `who` do `action` (pull, push, delete) in `project`?"""
    if not who.can_login:
        return False
    if who.sysadmin:
        return True
    if action == "pull" and project in (PUBLIC, "library"):
        return True  # anyone, robots included, pulls from a public project
    return action in who.grants.get(project, frozenset()) or action in who.grants.get("*", frozenset())


def sees(who: Principal, project: str) -> bool:
    """May `who` know that `project` exists? Whoever may not is answered as for a project
    that does not exist."""
    if who.sysadmin or project in (PUBLIC, "library") or "*" in who.grants:
        return True
    return project in who.grants


def visible_projects(who: Principal) -> set[str] | None:
    """Projects whose repositories `who` must see in the catalog (None: every project)."""
    if who.sysadmin or "*" in who.grants:
        return None
    if who.kind == "user":
        return {PUBLIC, "library", *who.grants}
    return set(who.grants)


# --------------------------------------------------------------------------- the stores


def run_store(data_dir: Path, work: Callable[[SqlAccounts], Awaitable[T]]) -> T:
    """Run `work` against the server's account store, in a private event loop."""

    async def main() -> T:
        engine = create_engine(load_settings(data_dir=data_dir).sqlalchemy_url, pool_size=1)
        try:
            return await work(SqlAccounts(engine))
        finally:
            await engine.dispose()

    return asyncio.run(main())


@dataclass
class Seeded:
    project_ids: dict[str, int]
    user_ids: dict[str, int]


def seed_accounts(data_dir: Path) -> Seeded:
    """Projects pub (public), priv and hidden (private), a user per role in pub and priv,
    an outsider, and the robots."""

    async def work(store: SqlAccounts) -> Seeded:
        admin = await store.get_user("admin")
        assert admin is not None and admin.sysadmin, "the server did not bootstrap its admin"
        project_ids = {}
        for name, public in ((PUBLIC, True), (PRIVATE, False), (HIDDEN, False)):
            project = await store.create_project(name, admin.user_id, {"public": "true" if public else "false"})
            project_ids[name] = project.project_id
        user_ids = {"admin": admin.user_id}
        users = [p for p in PRINCIPALS.values() if p.kind == "user" and not p.sysadmin] + list(EXTRA_USERS)
        for p in users:
            assert p.username and p.password
            user = await store.create_user(
                p.username,
                hash_password(p.password),
                email=f"{p.key}@example.com",
                realname=p.key,
                comment="",
                sysadmin=False,
            )
            user_ids[p.key] = user.user_id
            if p.role is not None:
                for name in PROJECTS:
                    await store.add_member(project_ids[name], user.user_id, p.role)
        now = int(time.time())
        for p in PRINCIPALS.values():
            if p.kind != "robot":
                continue
            assert p.username and p.password
            system = "*" in p.grants
            permissions = [
                RobotPermission("project", namespace, tuple(_robot_access(a) for a in sorted(actions)))
                for namespace, actions in p.grants.items()
            ]
            await store.create_robot(
                p.username,
                hash_secret(p.password),
                description=p.key,
                level="system" if system else "project",
                project_id=None if system else project_ids[PRIVATE],
                duration=1 if p.key == "rexpired" else -1,
                expires_at=now - 3600 if p.key == "rexpired" else -1,
                disabled=p.key == "rdisabled",
                permissions=permissions,
                creator="admin",
            )
        return Seeded(project_ids, user_ids)

    return run_store(data_dir, work)


def _robot_access(action: str) -> tuple[str, str]:
    """Harbor's robot permission for a registry action."""
    return ("artifact", "delete") if action == "delete" else ("repository", action)


def create_user(data_dir: Path, username: str, password: str, memberships: dict[int, int] | None = None) -> int:
    async def work(store: SqlAccounts) -> int:
        user = await store.create_user(
            username, hash_password(password), email=None, realname=username, comment="", sysadmin=False
        )
        for project_id, role in (memberships or {}).items():
            await store.add_member(project_id, user.user_id, role)
        return user.user_id

    return run_store(data_dir, work)


def delete_user(data_dir: Path, username: str) -> None:
    async def work(store: SqlAccounts) -> None:
        user = await store.get_user(username)
        assert user is not None
        assert await store.delete_user(user.user_id)

    run_store(data_dir, work)


def project_exists(data_dir: Path, name: str) -> bool:
    async def work(store: SqlAccounts) -> bool:
        return await store.get_project(name) is not None

    return run_store(data_dir, work)


def audit_records(data_dir: Path, **query: Any) -> list[AuditRecord]:
    async def work(store: SqlAccounts) -> list[AuditRecord]:
        return (await store.list_audit(AuditQuery(**query), 0, 10_000)).items

    return run_store(data_dir, work)
