"""Cron schedules of upkeep jobs, in Harbor's terms.

Harbor's cron has six fields, seconds first (`0 0 3 * * *` is 03:00 every day), in UTC.
Schedule types: Hourly, Daily and Weekly have fixed crons (Harbor's), Custom takes the
caller's, None removes the schedule; Manual is not a schedule but a run now (`SystemJobs`
in mgmt handles it). Every instance polls (`tick`); claiming an occurrence moves the
stored `next_run` with a conditional update, so exactly one instance runs each.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from croniter import CroniterError, croniter

from portside.errors import BadRequest, Conflict
from portside.meta.upkeep import JobRecord, ScheduleRecord, ScheduleStore
from portside.upkeep.jobs import JobRunner

__all__ = ["PRESETS", "Scheduler", "next_run", "valid_cron"]

log = logging.getLogger("portside.upkeep")

PRESETS = {"Hourly": "0 0 * * * *", "Daily": "0 0 0 * * *", "Weekly": "0 0 0 * * 0"}
CUSTOM = "Custom"
NONE = "None"
MAX_CRON_LENGTH = 64  # the schedules table's column


def valid_cron(cron: str, now: datetime | None = None) -> str:
    """`cron` normalised, or BadRequest: six fields, seconds first, that fire some time
    after `now` (`0 0 0 31 2 *`, February 31st, is well-formed but never comes)."""
    expression = " ".join(cron.split())
    if len(expression) > MAX_CRON_LENGTH:
        raise BadRequest(f"cron must be at most {MAX_CRON_LENGTH} characters long")
    if len(expression.split()) != 6 or not croniter.is_valid(expression, second_at_beginning=True):
        raise BadRequest(f"invalid cron {cron!r}: six fields, seconds first, e.g. '0 0 3 * * *'")
    try:
        next_run(expression, now or datetime.now(UTC))
    except CroniterError:
        raise BadRequest(f"cron {cron!r} never fires") from None
    return expression


def next_run(cron: str, after: datetime) -> datetime:
    """The first time `cron` fires after `after` (UTC)."""
    found = croniter(cron, after.astimezone(UTC), second_at_beginning=True).get_next(datetime)
    assert isinstance(found, datetime)
    return found.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Fired:
    kind: str
    job: JobRecord | None  # None: one of its kind was still running, so this one was skipped


class Scheduler:
    def __init__(self, schedules: ScheduleStore, runner: JobRunner):
        self._schedules = schedules
        self._runner = runner

    async def get(self, kind: str) -> ScheduleRecord | None:
        return await self._schedules.get_schedule(kind)

    async def set(
        self, kind: str, type: str, cron: str | None, parameters: Mapping[str, Any], now: datetime | None = None
    ) -> ScheduleRecord | None:
        """Schedule `kind` (Hourly, Daily, Weekly, Custom), or remove its schedule (None)."""
        if type == NONE:
            await self._schedules.delete_schedule(kind)
            return None
        if type in PRESETS:
            expression = PRESETS[type]
        elif type == CUSTOM:
            if not cron:
                raise BadRequest("a Custom schedule needs a cron")
            expression = valid_cron(cron, now)
        else:
            raise BadRequest(f"unsupported schedule type {type!r}; use Hourly, Daily, Weekly, Custom or None")
        first = next_run(expression, now or datetime.now(UTC))
        return await self._schedules.put_schedule(kind, type, expression, json.dumps(dict(parameters)), first)

    async def tick(self, now: datetime | None = None) -> list[Fired]:
        """Start the jobs whose time has come (every instance calls this periodically)."""
        at = now or datetime.now(UTC)
        await self._runner.expire()
        fired = []
        for schedule in await self._schedules.due_schedules(at):
            if schedule.next_run is None or not self._runner.handles(schedule.kind):
                continue
            # Occurrences missed while no instance ran are not made up: the next is after now.
            try:
                following = next_run(schedule.cron, max(at, schedule.next_run))
            except CroniterError:  # stored before such crons were refused: it never fires again
                log.warning("the %s schedule %r never fires again; set another", schedule.kind, schedule.cron)
                continue
            if not await self._schedules.claim_run(schedule.kind, schedule.next_run, following):
                continue  # another instance took this occurrence
            try:
                job = await self._runner.start(schedule.kind, "Schedule", json.loads(schedule.parameters))
            except Conflict:
                log.warning("scheduled %s skipped: the previous one is still running", schedule.kind)
                fired.append(Fired(schedule.kind, None))
            else:
                fired.append(Fired(schedule.kind, job))
        return fired
