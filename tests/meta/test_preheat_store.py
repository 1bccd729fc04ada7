"""P2P preheat on both databases: instances (names unique, one default, the secret
encrypted in the row and kept or replaced on update), policies (names unique per project,
gone with their project), executions with task counts counted from their tasks, a task's
log appended to, and the outbox cursor that one instance moves at a time."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from portside.errors import Conflict
from portside.meta.criteria import Criteria
from portside.meta.preheat import NewInstance, NewPolicy
from portside.meta.sql.preheat import SqlPreheat
from tests.meta.conftest import Stores

SECRET = "preheat-store-secret-9a2e"


def _instance(name: str, **extra: object) -> NewInstance:
    values: dict[str, object] = {
        "name": name,
        "vendor": "dragonfly",
        "endpoint": f"https://{name}.example",
        "auth_mode": "OAUTH",
        "auth_secret": SECRET,
    }
    values.update(extra)
    return NewInstance(**values)  # type: ignore[arg-type]


async def test_instances(stores: Stores) -> None:
    store = SqlPreheat(stores.engine)
    first = await store.create_instance(_instance("a", default=True))
    assert first.has_secret and first.default and first.status == "unknown"
    with pytest.raises(Conflict):
        await store.create_instance(_instance("a"))
    async with stores.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT auth_secret FROM p2p_instances WHERE name = 'a'"))).scalar()
    assert stored and SECRET not in stored
    assert await store.instance_secret(first.id) == SECRET
    assert await SqlPreheat(stores.engine).instance_secret(first.id) == SECRET  # one key for all

    second = await store.create_instance(_instance("b", default=True))
    page = await store.list_instances(Criteria(order=(("name", False),)), 0, 10)
    assert [(i.name, i.default) for i in page.items] == [("a", False), ("b", True)] and page.total == 2
    updated = await store.update_instance(
        second.id, _instance("b", description="kept", auth_secret=""), keep_secret=True
    )
    assert updated is not None and updated.description == "kept" and await store.instance_secret(second.id) == SECRET
    await store.update_instance(second.id, _instance("b", auth_mode="NONE", auth_secret=""), keep_secret=False)
    assert await store.instance_secret(second.id) == ""
    await store.record_instance_health(first.id, "unhealthy", "refused")
    found = await store.get_instance("a")
    assert found is not None and found.status == "unhealthy" and found.last_error == "refused"
    assert (await store.delete_instance(second.id)) is not None and await store.get_instance(second.id) is None


async def test_policies_executions_tasks_and_the_cursor(stores: Stores) -> None:
    store = SqlPreheat(stores.engine)
    user = await stores.accounts.create_user("owner", "hash", email=None, realname="O", comment="", sysadmin=False)
    project = await stores.accounts.create_project("team", user.user_id, {})
    instance = await store.create_instance(_instance("df"))
    new = NewPolicy("p", project.project_id, instance.id, "[]", '{"type":"manual"}', "", owner_id=user.user_id)
    policy = await store.create_policy(new)
    with pytest.raises(Conflict):
        await store.create_policy(new)
    assert [p.name for p in await store.policies_of_instance(instance.id)] == ["p"]

    execution = await store.create_execution(policy.id, "MANUAL", "{}")
    tasks = [await store.create_task(execution.id, '{"artifact": "team/app:v1"}') for _ in range(3)]
    await store.update_task(tasks[0].id, status="Running", started=True, log="one\n")
    await store.update_task(tasks[0].id, status="Success", log="two\n")
    await store.update_task(tasks[1].id, status="Error", message="refused")
    found = await store.get_execution(execution.id)
    assert found is not None and (found.counts.success, found.counts.error, found.counts.pending) == (1, 1, 1)
    assert await store.task_log(tasks[0].id) == "one\ntwo\n"
    task = await store.get_task(tasks[0].id)
    assert task is not None and task.run_count == 1 and task.end_time is not None
    assert await store.request_stop(execution.id)
    await store.end_execution(execution.id, "Stopped", "stopped on request")
    assert not await store.request_stop(execution.id)  # no longer running
    assert (await store.list_executions(policy.id, 0, 10)).total == 1

    assert await store.cursor("scan-completed") is None
    assert await store.move_cursor("scan-completed", None, 7)
    assert not await store.move_cursor("scan-completed", None, 9)  # another instance started it
    assert await store.move_cursor("scan-completed", 7, 9)
    assert not await store.move_cursor("scan-completed", 7, 12)  # another instance moved it
    assert await store.cursor("scan-completed") == 9

    assert await stores.accounts.delete_project(project.project_id)
    assert await store.get_policy_by_id(policy.id) is None  # gone with its project
    assert await store.get_execution(execution.id) is None
