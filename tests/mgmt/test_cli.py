"""`portside user|project|robot` on the same store the server uses."""

import asyncio
from pathlib import Path

from typer.testing import CliRunner

from portside.cli import app
from tests.mgmt.conftest import Harbor


async def test_cli_then_api(tmp_path: Path, harbor: Harbor) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]

    async def run(*args: str, stdin: str | None = None) -> str:
        # The CLI runs its own event loop, so off this one.
        result = await asyncio.to_thread(runner.invoke, app, [*args, *data], input=stdin)
        assert result.exit_code == 0, result.output
        return result.output

    assert "created user carol" in await run("user", "add", "carol", "--password", "Passw0rd1", "--email", "c@x.io")
    assert "carol" in await run("user", "list")
    await run("user", "passwd", "carol", "--password-stdin", stdin="Newpass123\n")
    assert await harbor.status("GET", "/users/current", who=("carol", "Newpass123")) == 200
    assert "created project cli-proj" in await run("project", "add", "cli-proj", "--owner", "carol", "--public")
    assert "cli-proj\tpublic\tcarol" in await run("project", "list")
    out = await run("robot", "add", "bot", "--project", "cli-proj", "--access", "repository:pull")
    assert "robot$cli-proj+bot" in out
    secret = out.split("secret: ")[1].split()[0]
    assert "robot$cli-proj+bot" in await run("robot", "list")
    assert await harbor.status("GET", "/projects/cli-proj", who=("robot$cli-proj+bot", secret)) == 200
    bad = await asyncio.to_thread(runner.invoke, app, ["user", "add", "dave", "--password", "weak", *data])
    assert bad.exit_code == 1
    owner = await asyncio.to_thread(runner.invoke, app, ["user", "delete", "carol", *data])
    assert owner.exit_code == 1 and "owns projects" in owner.output
    await run("user", "add", "erin", "--password", "Passw0rd1")
    await run("user", "delete", "erin")
    assert "erin" not in await run("user", "list")
