"""`portside project add --storage-limit` on the store the server uses."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner

from portside.cli import app
from tests.mgmt.conftest import Harbor
from tests.quota.conftest import MiB, quota_of


async def test_project_add_with_a_storage_limit(tmp_path: Path, harbor: Harbor) -> None:
    runner = CliRunner()

    async def run(*args: str) -> tuple[int, str]:
        result = await asyncio.to_thread(runner.invoke, app, [*args, "--data-dir", str(tmp_path)])
        return result.exit_code, result.output

    code, out = await run("project", "add", "sized", "--storage-limit", str(2 * MiB))
    assert code == 0 and "created project sized" in out, out
    assert (await quota_of(harbor, "sized"))["hard"]["storage"] == 2 * MiB
    code, out = await run("project", "add", "free", "--storage-limit", "-1")
    assert code == 0, out
    assert (await quota_of(harbor, "free"))["hard"]["storage"] == -1
    code, out = await run("project", "add", "plain")
    assert code == 0, out
    assert (await quota_of(harbor, "plain"))["hard"]["storage"] == -1
    code, out = await run("project", "add", "bad", "--storage-limit", "-5")
    assert code == 1 and "invalid storage limit" in out, out
    assert await harbor.status("HEAD", "/projects", params={"project_name": "bad"}) == 404
