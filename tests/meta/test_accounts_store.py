"""SqlAccounts and SqlSessions: users, projects, members, robots, audit, web sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portside.errors import Conflict, NotFound, PreconditionFailed
from portside.meta.accounts import AuditEntry, AuditQuery, RobotPermission, UserUpdate
from portside.meta.criteria import EVERYTHING, Match
from portside.meta.sessions import WebSession
from portside.meta.sql.accounts import PROJECT_ADMIN_ROLE, SqlAccounts
from tests.meta.conftest import Stores, blob


async def _user(accounts: SqlAccounts, name: str, email: str | None = None) -> int:
    user = await accounts.create_user(name, "hash", email=email, realname=name.title(), comment="", sysadmin=False)
    return user.user_id


async def test_users(stores: Stores):
    accounts = stores.accounts
    user = await accounts.create_user("alice", "h1", email="a@x.io", realname="Alice", comment="c", sysadmin=True)
    assert user.sysadmin is True and user.email == "a@x.io" and user.totp_secret is None
    assert user.creation_time.tzinfo is not None
    assert await accounts.get_user("alice") == user
    assert await accounts.get_user(user.user_id) == user
    assert await accounts.get_user("nobody") is None
    changed = await accounts.update_user(user.user_id, UserUpdate(realname="Al", sysadmin=False, totp_secret="S"))
    assert changed is not None and changed.realname == "Al" and changed.sysadmin is False
    assert changed.totp_secret == "S" and changed.email == "a@x.io"
    cleared = await accounts.update_user(user.user_id, UserUpdate(clear_totp=True))
    assert cleared is not None and cleared.totp_secret is None
    assert await accounts.update_user(9999, UserUpdate(realname="x")) is None
    assert await accounts.delete_user(user.user_id) is True
    assert await accounts.delete_user(user.user_id) is False


async def test_user_names_and_emails_are_unique(stores: Stores):
    accounts = stores.accounts
    bob = await _user(accounts, "bob", "b@x.io")
    with pytest.raises(Conflict, match="username"):
        await _user(accounts, "bob")
    with pytest.raises(Conflict, match="email"):
        await _user(accounts, "bobby", "b@x.io")
    other = await _user(accounts, "carol", "c@x.io")
    with pytest.raises(Conflict, match="email"):
        await accounts.update_user(other, UserUpdate(email="b@x.io"))
    assert (await accounts.get_user(bob)) is not None
    # Users without an email do not collide on it.
    await _user(accounts, "dave")
    await _user(accounts, "erin")


async def test_list_users_matches_literally_and_ignores_case(stores: Stores):
    accounts = stores.accounts
    for name in ("dev_ops", "devXops", "Dev%Team", "admin2"):
        await _user(accounts, name)

    async def containing(text: str) -> list[str]:
        criteria = EVERYTHING.where("username", Match("fuzzy", (text,)))
        return [u.username for u in (await accounts.list_users(criteria, 0, 10)).items]

    assert await containing("_") == ["dev_ops"]
    assert await containing("%") == ["Dev%Team"]
    assert set(await containing("DEV")) == {"dev_ops", "devXops", "Dev%Team"}
    page = await accounts.list_users(EVERYTHING, 1, 2)
    assert page.total == 4 and [u.username for u in page.items] == ["devXops", "Dev%Team"]


async def test_projects(stores: Stores):
    accounts, db = stores.accounts, stores.db
    owner = await _user(accounts, "owner")
    project = await accounts.create_project("team_a", owner, {"public": "true", "auto_scan": "false"})
    assert project.name == "team_a" and project.owner_name == "owner" and project.public
    assert project.metadata == {"public": "true", "auto_scan": "false"}
    assert await accounts.role_of(project.project_id, owner) == PROJECT_ADMIN_ROLE
    with pytest.raises(Conflict):
        await accounts.create_project("team_a", owner, {})
    # Repositories count for the project named by their first component, exactly: "_"
    # in a project name is no wildcard.
    for repo in ("team_a", "team_a/x", "team_a/y/z", "teamXa/w", "team_ab/v", "team_a-b/u"):
        await db.link_blob(repo, *blob("x"))
    found = await accounts.get_project("team_a")
    assert found is not None and found.repo_count == 3
    assert await accounts.get_project(project.project_id) == found
    await accounts.update_metadata(project.project_id, {"public": "false", "severity": "high"})
    found = await accounts.get_project(project.project_id)
    assert found is not None and found.metadata == {"public": "false", "auto_scan": "false", "severity": "high"}
    assert not found.public
    # A project is deleted only once it holds no repositories, checked in the deleting
    # transaction itself.
    with pytest.raises(PreconditionFailed, match="team_a still has 3 repositories"):
        await accounts.delete_project(project.project_id)
    empty = await accounts.create_project("team_b", owner, {})
    assert await accounts.delete_project(empty.project_id) is True
    assert await accounts.delete_project(empty.project_id) is False
    assert await accounts.get_project("team_b") is None


async def test_list_projects(stores: Stores):
    accounts = stores.accounts
    owner = await _user(accounts, "owner")
    member = await _user(accounts, "member")
    names = ["a-b", "a.b", "a_b", "ab", "b1", "b10", "b9"]
    ids = {}
    for name in reversed(names):
        ids[name] = (await accounts.create_project(name, owner, {"public": str(name == "ab").lower()})).project_id
    await accounts.add_member(ids["b9"], member, 2)

    async def listed(**kwargs: object) -> list[str]:
        query = {"name_contains": None, "exact_name": None, "public": None, "visible_to": None, "member_of": None}
        query.update(kwargs)
        page = await accounts.list_projects(offset=0, limit=100, **query)  # type: ignore[arg-type]
        return [p.name for p in page.items]

    assert await listed() == sorted(names)  # byte order
    assert await listed(name_contains="_") == ["a_b"]
    assert await listed(name_contains="B") == ["a-b", "a.b", "a_b", "ab", "b1", "b10", "b9"]
    assert await listed(exact_name="b1") == ["b1"]
    assert await listed(public=True) == ["ab"]
    assert len(await listed(public=False)) == 6
    assert await listed(member_of=member) == ["b9"]
    assert await listed(visible_to=member) == ["ab", "b9"]
    page = await accounts.list_projects(
        name_contains=None, exact_name=None, public=None, visible_to=None, member_of=None, offset=2, limit=2
    )
    assert page.total == 7 and [p.name for p in page.items] == sorted(names)[2:4]


async def test_members(stores: Stores):
    accounts = stores.accounts
    owner, dev = await _user(accounts, "owner"), await _user(accounts, "dev_1")
    project = await accounts.create_project("proj", owner, {})
    member = await accounts.add_member(project.project_id, dev, 2)
    assert member.username == "dev_1" and member.role_id == 2
    with pytest.raises(Conflict):
        await accounts.add_member(project.project_id, dev, 3)
    with pytest.raises(NotFound):
        await accounts.add_member(project.project_id, 9999, 3)
    assert await accounts.get_member(project.project_id, member.id) == member
    assert await accounts.get_member(project.project_id, 9999) is None
    page = await accounts.list_members(project.project_id, None, 0, 10)
    assert [m.username for m in page.items] == ["owner", "dev_1"] and page.total == 2
    assert [m.username for m in (await accounts.list_members(project.project_id, "_", 0, 10)).items] == ["dev_1"]
    assert await accounts.update_member(project.project_id, member.id, 3) is True
    assert await accounts.role_of(project.project_id, dev) == 3
    assert await accounts.roles_of_user(dev) == {"proj": 3}
    assert await accounts.remove_member(project.project_id, member.id) is True
    assert await accounts.remove_member(project.project_id, member.id) is False
    assert await accounts.update_member(project.project_id, member.id, 1) is False
    assert await accounts.role_of(project.project_id, dev) is None


async def test_robots(stores: Stores):
    accounts = stores.accounts
    owner = await _user(accounts, "owner")
    project = await accounts.create_project("proj", owner, {})
    permissions = (RobotPermission("project", "proj", (("repository", "pull"), ("repository", "push"))),)
    robot = await accounts.create_robot(
        "robot$proj+ci",
        "secret",
        description="ci",
        level="project",
        project_id=project.project_id,
        duration=30,
        expires_at=2**40,
        disabled=False,
        permissions=permissions,
        creator="owner",
    )
    assert robot.permissions == permissions and robot.expires_at == 2**40 and robot.disabled is False
    assert robot.creation_time.tzinfo is not None
    with pytest.raises(Conflict):
        await accounts.create_robot(
            "robot$proj+ci", "s", description="", level="project", project_id=project.project_id,
            duration=1, expires_at=-1, disabled=False, permissions=(), creator="",
        )  # fmt: skip
    assert await accounts.get_robot("robot$proj+ci") == robot
    assert await accounts.get_robot(robot.id) == robot
    changed = await accounts.update_robot(robot.id, disabled=True, permissions=(), description="off")
    assert changed is not None and changed.disabled is True and changed.permissions == ()
    assert changed.description == "off"
    assert (await accounts.list_robots(project.project_id, None, 0, 10)).total == 1
    assert (await accounts.list_robots(None, "CI", 0, 10)).total == 1
    assert (await accounts.list_robots(None, "_", 0, 10)).total == 0
    assert await accounts.delete_robot(robot.id) is True
    assert await accounts.delete_robot(robot.id) is False
    assert await accounts.update_robot(robot.id, disabled=False) is None


async def test_audit(stores: Stores):
    accounts = stores.accounts
    t0 = datetime(2031, 5, 1, 12, 0, tzinfo=UTC)
    await accounts.record(project_id=1, username="u1", operation="create", resource_type="project", resource="p1")
    # A batch written after the fact, out of time order (instances flush when they flush).
    await accounts.record_many(
        [
            AuditEntry(2, "u2", "pull", "artifact", "p2/r:late", "c", True, t0 + timedelta(minutes=2)),
            AuditEntry(2, "u2", "pull", "artifact", "p2/r:early", "c", True, t0),
            AuditEntry(None, "u3", "delete", "user", "X_Y", "", False, t0 + timedelta(minutes=1)),
        ]
    )
    await accounts.record_many([])
    everything = await accounts.list_audit(AuditQuery(), 0, 10)
    assert everything.total == 4
    # Newest first by time, not by id.
    assert [r.resource for r in everything.items] == ["p2/r:late", "X_Y", "p2/r:early", "p1"]
    assert all(r.op_time.tzinfo is not None for r in everything.items)
    ranged = await accounts.list_audit(AuditQuery(since=t0, until=t0 + timedelta(hours=1)), 0, 10)
    assert [r.resource for r in ranged.items] == ["p2/r:late", "X_Y", "p2/r:early"]
    oldest_first = await accounts.list_audit(AuditQuery(since=t0), 0, 10, newest_first=False)
    assert [r.resource for r in oldest_first.items] == ["p2/r:early", "X_Y", "p2/r:late"]
    assert (await accounts.list_audit(AuditQuery(project_id=2), 0, 10)).total == 2
    assert (await accounts.list_audit(AuditQuery(project_ids=[1]), 0, 10)).total == 1
    assert (await accounts.list_audit(AuditQuery(project_ids=[]), 0, 10)).total == 0
    assert (await accounts.list_audit(AuditQuery(username="u2", operation="pull"), 0, 10)).total == 2
    assert [r.resource for r in (await accounts.list_audit(AuditQuery(resource="_"), 0, 10)).items] == ["X_Y"]
    assert (await accounts.list_audit(AuditQuery(resource="x_y"), 0, 10)).total == 1
    failed = (await accounts.list_audit(AuditQuery(resource_type="user"), 0, 10)).items[0]
    assert failed.success is False and failed.project_id is None
    assert await accounts.purge_audit(t0 + timedelta(seconds=90)) == 3  # p1 is from now, before t0
    assert [r.resource for r in (await accounts.list_audit(AuditQuery(), 0, 10)).items] == ["p2/r:late"]


async def test_purge_audit_in_batches(stores: Stores, monkeypatch: pytest.MonkeyPatch):
    import portside.meta.sql.accounts as module

    monkeypatch.setattr(module, "_PURGE_BATCH", 3)
    t0 = datetime(2020, 1, 1, tzinfo=UTC)
    entries = [
        AuditEntry(None, "u", "pull", "artifact", f"r:{i}", "", True, t0 + timedelta(seconds=i)) for i in range(7)
    ]
    await stores.accounts.record_many(entries)
    assert await stores.accounts.purge_audit(t0 + timedelta(seconds=6)) == 6
    assert [r.resource for r in (await stores.accounts.list_audit(AuditQuery(), 0, 10)).items] == ["r:6"]


async def test_sessions(stores: Stores):
    accounts, sessions = stores.accounts, stores.sessions
    user = await _user(accounts, "web")
    later = datetime.now(UTC) + timedelta(hours=1)
    await sessions.create_session(WebSession("h1", user, "csrf", later))
    await sessions.create_session(WebSession("h2", user, "csrf", datetime.now(UTC) - timedelta(seconds=1)))
    found = await sessions.get_session("h1")
    assert found == WebSession("h1", user, "csrf", later)
    assert await sessions.get_session("h2") is None  # expired
    assert await sessions.purge_sessions(datetime.now(UTC)) == 1
    await sessions.delete_session("h1")
    assert await sessions.get_session("h1") is None
    await sessions.create_session(WebSession("h3", user, "csrf", later))
    await sessions.delete_user_sessions(user)
    assert await sessions.get_session("h3") is None
