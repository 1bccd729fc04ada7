"""Jobs: recorded, one of a kind at a time, logged, stoppable, recovered when their
process dies; schedules fire exactly once per occurrence however many instances poll."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from portside.errors import BadRequest, Conflict
from portside.meta.sql.jobs import SqlJobs
from portside.upkeep.gc import GcOptions
from portside.upkeep.jobs import JobRunner, Journal
from portside.upkeep.schedule import Scheduler, next_run, valid_cron
from tests.api import oci
from tests.upkeep.conftest import World


async def _until_done(jobs: SqlJobs, job_id: int) -> str:
    for _ in range(500):
        job = await jobs.get_job(job_id)
        assert job is not None
        if job.status not in ("Pending", "Running"):
            return job.status
        await asyncio.sleep(0.01)
    raise AssertionError(f"job {job_id} did not finish")


async def test_gc_job_records_its_log_and_result(world: World) -> None:
    image = oci.image_manifest(oci.config_blob(), [oci.layer(100)])
    await world.push("r", image)
    runner = JobRunner(
        world.jobs, {"gc": world.collector(grace_seconds=0).job}, checks={"gc": GcOptions.from_parameters}
    )
    lines: list[str] = []
    job = await runner.run("gc", "Manual", {"delete_untagged": True, "dry_run": True}, echo=lines.append)
    assert job.status == "Success" and job.trigger == "Manual"
    result = json.loads(job.result or "{}")
    assert result["dry_run"] is True and result["blobs_deleted"] == 2 and result["manifests_deleted"] == 1
    log = await world.jobs.job_log(job.id) or ""
    assert "2 blobs and 1 manifests eligible for deletion" in log
    assert f"would delete blob {image.blobs[0].digest}" in log
    assert log.splitlines() == lines  # what the CLI prints is what the API serves
    assert await world.has_manifest("r", image.digest)
    with pytest.raises(BadRequest):
        await runner.run("gc", "Manual", {"dry_run": "yes"})


async def test_one_job_of_a_kind_at_a_time_and_stop(world: World) -> None:
    started = asyncio.Event()
    steps = 0

    async def endless(parameters: Mapping[str, Any], journal: Journal) -> Mapping[str, Any]:
        nonlocal steps
        started.set()
        while True:
            steps += 1
            journal.info(f"step {steps}")
            await journal.checkpoint()
            await asyncio.sleep(0.005)

    async def quick(parameters: Mapping[str, Any], journal: Journal) -> Mapping[str, Any]:
        return {"done": True}

    runner = JobRunner(world.jobs, {"gc": endless, "scrub": quick}, flush_seconds=0.0)
    job = await runner.start("gc", "Manual", {})
    await started.wait()
    with pytest.raises(Conflict):
        await runner.start("gc", "Manual", {})
    other = await runner.run("scrub", "Manual", {})  # another kind runs meanwhile
    assert other.status == "Success" and json.loads(other.result or "") == {"done": True}
    stopping = await world.jobs.request_stop(job.id)
    assert stopping is not None and stopping.stop_requested
    assert await _until_done(world.jobs, job.id) == "Stopped"
    log = await world.jobs.job_log(job.id) or ""
    assert "step 1" in log and "stopped on request" in log
    # Stopping a finished job changes nothing; the next one may start.
    after = await world.jobs.request_stop(job.id)
    assert after is not None and after.status == "Stopped"
    follow = await runner.start("gc", "Manual", {})
    await world.jobs.request_stop(follow.id)
    assert await _until_done(world.jobs, follow.id) == "Stopped"
    await runner.wait()


async def test_a_job_whose_process_died_is_abandoned(world: World) -> None:
    runner = JobRunner(world.jobs, {"gc": world.collector().job}, lease_seconds=60)
    stale = await world.jobs.create_job("gc", "Manual", "{}", datetime.now(UTC) - timedelta(minutes=1))
    assert stale is not None
    await world.jobs.update_job(stale.id, status="Running")
    with pytest.raises(Conflict):  # still within its lease
        await runner.start("gc", "Manual", {})
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert await world.jobs.create_job("gc", "Manual", "{}", later) is not None
    dead = await world.jobs.get_job(stale.id)
    assert dead is not None and dead.status == "Error"
    assert "abandoned" in (await world.jobs.job_log(stale.id) or "")


def test_cron_is_harbors_six_fields_seconds_first() -> None:
    assert valid_cron(" 0  30 3 * * * ") == "0 30 3 * * *"
    for bad in ("0 3 * * *", "x 0 * * * *", "", "0 0 0 * * * *"):
        with pytest.raises(BadRequest):
            valid_cron(bad)
    start = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert next_run("0 30 3 * * *", start) == datetime(2024, 5, 2, 3, 30, tzinfo=UTC)
    assert next_run("*/10 * * * * *", start) == datetime(2024, 5, 1, 12, 0, 10, tzinfo=UTC)


async def test_schedules_fire_once_per_occurrence_across_instances(world: World) -> None:
    fired: list[Mapping[str, Any]] = []

    async def record(parameters: Mapping[str, Any], journal: Journal) -> Mapping[str, Any]:
        fired.append(parameters)
        return {}

    # Two instances: each its own runner and scheduler over the same database.
    runners = [JobRunner(SqlJobs(world.engine), {"gc": record}) for _ in range(2)]
    schedulers = [Scheduler(SqlJobs(world.engine), runner) for runner in runners]
    now = datetime(2030, 1, 1, 0, 0, 0, tzinfo=UTC)
    with pytest.raises(BadRequest):
        await schedulers[0].set("gc", "Custom", None, {})
    schedule = await schedulers[0].set("gc", "Custom", "0 */5 * * * *", {"delete_untagged": True}, now=now)
    assert schedule is not None and schedule.next_run == datetime(2030, 1, 1, 0, 5, tzinfo=UTC)
    assert await schedulers[1].tick(now) == []  # not due yet

    due = datetime(2030, 1, 1, 0, 5, 1, tzinfo=UTC)
    results = await asyncio.gather(*(s.tick(due) for s in schedulers))
    for runner in runners:
        await runner.wait()
    assert sum(len(r) for r in results) == 1
    assert fired == [{"delete_untagged": True}]
    stored = await schedulers[1].get("gc")
    assert stored is not None and stored.next_run == datetime(2030, 1, 1, 0, 10, tzinfo=UTC)
    history = await world.jobs.list_jobs("gc", None, 0, 10, True)
    assert [(j.trigger, j.status) for j in history.items] == [("Schedule", "Success")]

    # Missed occurrences are not made up: a poll long after fires once, then waits for the next.
    late = datetime(2030, 1, 1, 1, 2, 3, tzinfo=UTC)
    assert len(await schedulers[0].tick(late)) == 1
    await runners[0].wait()
    stored = await schedulers[0].get("gc")
    assert stored is not None and stored.next_run == datetime(2030, 1, 1, 1, 5, tzinfo=UTC)

    daily = await schedulers[0].set("gc", "Daily", "ignored", {}, now=now)
    assert daily is not None and (daily.cron, daily.next_run) == ("0 0 0 * * *", datetime(2030, 1, 2, tzinfo=UTC))
    assert await schedulers[0].set("gc", "None", None, {}) is None
    assert await schedulers[0].get("gc") is None
