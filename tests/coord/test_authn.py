"""The authenticator's remembered credentials, dropped on every instance when an account
changes on one: two authenticators over one database (two engines), one Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from portside.auth.authn import Authenticator
from portside.auth.passwords import hash_secret, verify_password
from portside.auth.throttle import LoginThrottle
from portside.coord.coordinator import Coordinator, LocalCoordinator
from portside.errors import Unauthorized
from portside.meta.accounts import UserUpdate
from portside.meta.sql.accounts import SqlAccounts
from portside.meta.sql.engine import create_engine
from portside.meta.sql.migrate import upgrade
from tests.coord.conftest import Instances

OLD, NEW = "Old-Passw0rd", "New-Passw0rd"

# Verification follows the parameters stored in the hash: cheap ones keep these tests fast.
_cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def hash_password(password: str) -> str:
    return _cheap.hash(password)


@dataclass
class Instance:
    accounts: SqlAccounts
    authenticator: Authenticator
    coordinator: Coordinator


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'portside.db'}"
    engine = create_engine(url)
    await upgrade(engine)
    await engine.dispose()
    yield url


@pytest.fixture
async def instances_over(database: str) -> AsyncIterator[list[Instance]]:
    """Instances (an engine, accounts and an authenticator each) for given coordinators."""
    made: list[Instance] = []
    yield made
    for instance in made:
        await instance.accounts.close()


def _instance(made: list[Instance], database: str, coordinator: Coordinator) -> Instance:
    accounts = SqlAccounts(create_engine(database), after_commit=coordinator.account_changes.bump)
    authenticator = Authenticator(
        accounts, accounts, accounts, coordinator.login_throttle(50, 300), coordinator.account_changes
    )
    made.append(Instance(accounts, authenticator, coordinator))
    return made[-1]


async def test_a_password_changed_on_one_instance_is_refused_by_the_other_at_once(
    instances: Instances, instances_over: list[Instance], database: str
) -> None:
    a, b = _instance(instances_over, database, instances()), _instance(instances_over, database, instances())
    # Without the shared generation: what the authenticators did before Redis.
    unaware = Authenticator(a.accounts, a.accounts, a.accounts, LoginThrottle())
    user = await a.accounts.create_user(
        "alice", hash_password(OLD), email=None, realname="", comment="", sysadmin=False
    )
    await a.authenticator.login("alice", OLD)  # verified and remembered
    await unaware.login("alice", OLD)

    await b.accounts.update_user(user.user_id, UserUpdate(password_hash=hash_password(NEW)))

    with pytest.raises(Unauthorized):
        await a.authenticator.login("alice", OLD)
    await unaware.login("alice", OLD)  # the stale remembered verification this fixes
    await a.authenticator.login("alice", NEW)

    await b.accounts.delete_user(user.user_id)
    with pytest.raises(Unauthorized):
        await a.authenticator.login("alice", NEW)


async def test_a_robot_secret_refreshed_or_disabled_on_one_instance_is_refused_by_the_other(
    instances: Instances, instances_over: list[Instance], database: str
) -> None:
    a, b = _instance(instances_over, database, instances()), _instance(instances_over, database, instances())
    robot = await a.accounts.create_robot(
        "robot$ci",
        hash_secret("first-secret"),
        description="",
        level="system",
        project_id=None,
        duration=-1,
        expires_at=-1,
        disabled=False,
        permissions=[],
        creator="admin",
    )
    await a.authenticator.login("robot$ci", "first-secret")
    await b.accounts.update_robot(robot.id, secret_hash=hash_secret("second-secret"))
    with pytest.raises(Unauthorized):
        await a.authenticator.login("robot$ci", "first-secret")
    await a.authenticator.login("robot$ci", "second-secret")
    await b.accounts.update_robot(robot.id, disabled=True)
    with pytest.raises(Unauthorized):
        await a.authenticator.login("robot$ci", "second-secret")


async def test_logins_and_audit_records_do_not_move_the_accounts_generation(
    instances: Instances, instances_over: list[Instance], database: str
) -> None:
    a = _instance(instances_over, database, instances())
    await a.accounts.create_user("bob", hash_password(OLD), email=None, realname="", comment="", sysadmin=False)
    before = await a.coordinator.account_changes.current()
    await a.authenticator.login("bob", OLD)
    with pytest.raises(Unauthorized):
        await a.authenticator.login("bob", NEW)
    await a.accounts.record(
        project_id=None, username="bob", operation="pull", resource_type="artifact", resource="lib/x:1"
    )
    assert await a.coordinator.account_changes.current() == before


async def test_without_redis_one_process_drops_what_it_remembered_on_its_own_changes(
    instances_over: list[Instance], database: str, tmp_path: Path
) -> None:
    a = _instance(instances_over, database, LocalCoordinator(tmp_path / "locks"))
    user = await a.accounts.create_user(
        "carol", hash_password(OLD), email=None, realname="", comment="", sysadmin=False
    )
    await a.authenticator.login("carol", OLD)
    await a.accounts.update_user(user.user_id, UserUpdate(password_hash=hash_password(NEW)))
    with pytest.raises(Unauthorized):
        await a.authenticator.login("carol", OLD)


async def test_parallel_logins_with_the_same_credentials_verify_once(
    instances_over: list[Instance], database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client's parallel requests (or a fleet's, when the remembered verification runs
    out) share one argon2 check, done off the event loop."""
    import portside.auth.authn as authn

    a = _instance(instances_over, database, LocalCoordinator(tmp_path / "locks"))
    await a.accounts.create_user("dave", hash_password(OLD), email=None, realname="", comment="", sysadmin=False)
    checks: list[str] = []
    real = authn.verify_password

    def counted(stored: str, password: str) -> bool:
        checks.append(password)
        return real(stored, password)

    monkeypatch.setattr(authn, "verify_password", counted)
    results = await asyncio.gather(*(a.authenticator.login("dave", OLD) for _ in range(20)))
    assert {p.name for p in results} == {"dave"} and checks == [OLD]
    wrong = await asyncio.gather(*(a.authenticator.login("dave", NEW) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, Unauthorized) for r in wrong) and checks == [OLD, NEW]


async def test_a_hash_made_with_older_parameters_is_made_again_at_login(
    instances_over: list[Instance], database: str, tmp_path: Path
) -> None:
    a = _instance(instances_over, database, LocalCoordinator(tmp_path / "locks"))
    user = await a.accounts.create_user("erin", hash_password(OLD), email=None, realname="", comment="", sysadmin=False)
    before = await a.coordinator.account_changes.current()
    with pytest.raises(Unauthorized):
        await a.authenticator.login("erin", NEW)
    stored = await a.accounts.get_user("erin")
    assert stored is not None and stored.password_hash == user.password_hash  # a failed login changes nothing

    await a.authenticator.login("erin", OLD)
    stored = await a.accounts.get_user("erin")
    assert stored is not None and stored.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_password(stored.password_hash, OLD)
    # The same password hashed anew is no account change: what is remembered stays.
    assert await a.coordinator.account_changes.current() == before
    fresh = Authenticator(a.accounts, a.accounts, a.accounts, LoginThrottle())
    await fresh.login("erin", OLD)
    again = await a.accounts.get_user("erin")
    assert again is not None and again.password_hash == stored.password_hash  # made once


async def test_a_password_changed_meanwhile_is_not_overwritten_by_a_rehash(
    instances_over: list[Instance], database: str, tmp_path: Path
) -> None:
    a = _instance(instances_over, database, LocalCoordinator(tmp_path / "locks"))
    user = await a.accounts.create_user("finn", hash_password(OLD), email=None, realname="", comment="", sysadmin=False)
    changed = hash_password(NEW)
    await a.accounts.update_user(user.user_id, UserUpdate(password_hash=changed))
    # A login that verified OLD against the hash it read before the change comes to store its rehash.
    assert not await a.accounts.replace_password_hash(user.user_id, user.password_hash, hash_password(OLD))
    stored = await a.accounts.get_user("finn")
    assert stored is not None and stored.password_hash == changed
