"""CVE exports' files on both databases: kept for their owner only, told present, replaced,
and forgotten once expired."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from portside.meta.sql.cve_exports import SqlExportFiles
from portside.meta.sql.jobs import SqlJobs
from tests.meta.conftest import Stores


async def test_a_file_is_its_owners_until_it_expires(stores: Stores) -> None:
    jobs, files = SqlJobs(stores.engine), SqlExportFiles(stores.engine)
    job = await jobs.create_job("cve:u7", "Manual", json.dumps({}), datetime.now(UTC) - timedelta(minutes=5))
    assert job is not None
    content = ("Repository,CVE\r\n" + "lib/app,CVE-2018-18074\r\n" * 1000).encode()
    await files.put_file(job.id, "u7", content, 1000)
    assert await files.get_file(job.id, "u7") == content
    assert await files.get_file(job.id, "u8") is None
    assert await files.present([job.id, job.id + 1]) == {job.id}
    await files.put_file(job.id, "u7", b"Repository,CVE\r\n", 0)
    assert await files.get_file(job.id, "u7") == b"Repository,CVE\r\n"
    assert await files.expire_files(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert await files.expire_files(datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert await files.present([job.id]) == set()
    assert await files.get_file(job.id, "u7") is None
