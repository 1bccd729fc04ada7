"""Replication's store on both databases: policies unique by name, executions whose status
follows their tasks, claims taken once, leases that run out, retries due later, a stop that
ends waiting tasks and keeps a failing one from running again, and a listing whose server
stopped ended by anyone's round."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portside.errors import Conflict
from portside.meta.replication import Filter, NewPolicy, NewTask, TaskOutcome
from portside.meta.sql.replication import SqlReplication
from tests.meta.conftest import Stores


def _now() -> datetime:
    return datetime.now(UTC)


async def test_policies(stores: Stores) -> None:
    store = SqlReplication(stores.engine)
    filters = (Filter("name", "library/**"), Filter("tag", "v*", "matches"))
    made = await store.create_policy(
        NewPolicy(name="p", dest_registry_id=7, filters=filters, trigger="event_based"), None
    )
    assert made.filters == filters and made.src_registry_id is None and made.dest_registry_id == 7
    with pytest.raises(Conflict):
        await store.create_policy(NewPolicy(name="p", dest_registry_id=7), None)
    assert await store.policies_using(7) == ["p"] and await store.policies_using(8) == []
    assert [p.name for p in await store.event_policies()] == ["p"]
    when = _now() - timedelta(seconds=1)
    other = await store.create_policy(
        NewPolicy(name="q", src_registry_id=7, trigger="scheduled", cron="0 0 2 * * *"), when
    )
    assert [p.id for p in await store.due_policies(_now())] == [other.id]
    assert await store.claim_schedule(other.id, when, _now() + timedelta(days=1))
    assert not await store.claim_schedule(other.id, when, _now() + timedelta(days=1))  # taken once
    assert await store.due_policies(_now()) == []
    assert (await store.list_policies("q", 0, 10)).total == 1
    assert await store.delete_policy(made.id) and not await store.delete_policy(made.id)


async def test_tasks_claims_retries_and_status(stores: Stores) -> None:
    store = SqlReplication(stores.engine)
    policy = await store.create_policy(NewPolicy(name="run", dest_registry_id=1), None)
    tasks = [NewTask(f"library/a{n}", f"sha256:{n:064x}", f"m/a{n}", tags=("v1", "latest")) for n in range(2)]
    execution_id = await store.create_execution(policy.id, "manual", tasks)
    assert (await store.get_execution(execution_id)).in_progress == 2  # type: ignore[union-attr]
    lease = _now() + timedelta(seconds=60)
    first = await store.claim_tasks(_now(), lease, 10, "w1")
    assert len(first) == 2 and all(t.status == "Running" and t.attempts == 1 for t in first)
    assert first[0].src_resource == "library/a0:[v1,latest]"
    assert await store.claim_tasks(_now(), lease, 10, "w2") == []  # taken
    await store.finish_task(first[0].id, "w1", TaskOutcome("Succeed", "done\n"))
    retry = _now() + timedelta(seconds=30)
    await store.finish_task(first[1].id, "w1", TaskOutcome("Pending", "failed\n", retry_at=retry))
    await store.finish_task(first[1].id, "w2", TaskOutcome("Succeed", "not mine\n"))  # ignored
    assert await store.claim_tasks(_now(), lease, 10, "w1") == []  # not due yet
    again = await store.claim_tasks(retry + timedelta(seconds=1), lease, 10, "w2")
    assert [t.attempts for t in again] == [2]
    await store.finish_task(again[0].id, "w2", TaskOutcome("Failed", "gave up\n"))
    ended = await store.get_execution(execution_id)
    assert ended is not None and ended.status == "Failed" and (ended.succeed, ended.failed, ended.total) == (1, 1, 2)
    assert ended.end_time is not None
    assert await store.task_log(execution_id, again[0].id) == "failed\ngave up\n"
    page = await store.list_executions(policy.id, "Failed", "manual", 0, 10)
    assert [e.id for e in page.items] == [execution_id]


async def test_a_lease_runs_out_and_another_worker_takes_the_task(stores: Stores) -> None:
    store = SqlReplication(stores.engine)
    policy = await store.create_policy(NewPolicy(name="lease", dest_registry_id=1), None)
    await store.create_execution(policy.id, "event_based", [NewTask("a", "sha256:" + "1" * 64, "b")])
    short = _now() + timedelta(seconds=1)
    [task] = await store.claim_tasks(_now(), short, 10, "dead")
    assert await store.renew_lease(task.id, "dead", short)
    [taken] = await store.claim_tasks(short + timedelta(seconds=1), _now() + timedelta(seconds=60), 10, "alive")
    assert taken.id == task.id and taken.attempts == 2
    assert not await store.renew_lease(task.id, "dead", short)


async def test_stop(stores: Stores) -> None:
    store = SqlReplication(stores.engine)
    policy = await store.create_policy(NewPolicy(name="stop", dest_registry_id=1), None)
    tasks = [NewTask(f"r{n}", "sha256:" + f"{n}" * 64, "d") for n in range(3)]
    execution_id = await store.create_execution(policy.id, "manual", tasks)
    [running] = await store.claim_tasks(_now(), _now() + timedelta(seconds=60), 1, "w")
    assert await store.stop_execution(execution_id) and not await store.stop_execution(10**6)
    assert not await store.renew_lease(running.id, "w", _now() + timedelta(seconds=60))  # told to stop
    await store.finish_task(running.id, "w", TaskOutcome("Pending", "failed\n", retry_at=_now()))
    ended = await store.get_execution(execution_id)
    assert ended is not None and ended.status == "Stopped" and ended.stopped == 3 and ended.in_progress == 0
    assert await store.claim_tasks(_now() + timedelta(hours=1), _now() + timedelta(hours=2), 10, "w") == []


async def test_a_listing_whose_server_stopped_is_ended(stores: Stores) -> None:
    store = SqlReplication(stores.engine)
    policy = await store.create_policy(NewPolicy(name="listing", src_registry_id=1), None)
    soon = _now() + timedelta(seconds=5)
    execution_id = await store.create_execution(policy.id, "scheduled", [], listing_until=soon)
    await store.add_tasks(execution_id, [NewTask("a", "sha256:" + "2" * 64, "b")], soon)
    assert await store.active_execution(policy.id) == execution_id
    assert await store.expire_listings(_now()) == 0
    [task] = await store.claim_tasks(_now(), _now() + timedelta(seconds=60), 10, "w")
    await store.finish_task(task.id, "w", TaskOutcome("Succeed", ""))
    assert (await store.get_execution(execution_id)).status == "InProgress"  # type: ignore[union-attr]
    assert await store.expire_listings(soon + timedelta(seconds=1)) == 1
    ended = await store.get_execution(execution_id)
    assert ended is not None and ended.status == "Failed" and "listing stopped" in ended.status_text
    assert await store.active_execution(policy.id) is None


async def test_tasks_that_ran_out_of_attempts_while_a_side_was_down_are_revived(stores: Stores) -> None:
    store = SqlReplication(stores.engine)
    policy = await store.create_policy(NewPolicy(name="revive", dest_registry_id=1, trigger="event_based"), None)
    down = await store.create_execution(policy.id, "event_based", [NewTask("a", "sha256:" + "3" * 64, "b")])
    bad = await store.create_execution(policy.id, "event_based", [NewTask("c", "sha256:" + "4" * 64, "d")])
    lease = _now() + timedelta(seconds=60)
    for task in await store.claim_tasks(_now(), lease, 10, "w"):
        unreachable = task.execution_id == down
        await store.finish_task(task.id, "w", TaskOutcome("Failed", "gave up\n", unreachable=unreachable))
    assert (await store.get_execution(down)).status == "Failed"  # type: ignore[union-attr]
    assert await store.revive(policy.id, _now() - timedelta(hours=1), "") == 0  # healthy before it failed
    assert await store.revive(policy.id, _now() + timedelta(seconds=1), "answers again\n") == 1
    revived = await store.get_execution(down)
    assert revived is not None and revived.status == "InProgress" and revived.in_progress == 1
    assert (await store.get_execution(bad)).status == "Failed"  # type: ignore[union-attr]  # another cause
    [again] = await store.claim_tasks(_now() + timedelta(seconds=1), lease, 10, "w")
    assert again.execution_id == down and again.attempts == 1
    assert (await store.task_log(down, again.id)) == "gave up\nanswers again\n"
