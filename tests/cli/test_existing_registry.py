"""The operator's commands manage an existing registry and never make one.

Run from the wrong directory, `portside user list` used to make an empty registry in
./portside-data and answer as if it were the server's. Every command but `serve` and
`migrate` now refuses, says where it looked, and how to point it at the right place.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from portside.cli import app
from tests.servers import Portside
from tests.stacks import Backing

COMMANDS = [
    ["user", "list"],
    ["user", "add", "carol", "--password", "Passw0rd-1"],
    ["user", "passwd", "admin", "--password", "Passw0rd-2"],
    ["user", "delete", "carol"],
    ["project", "list"],
    ["project", "add", "team"],
    ["robot", "list"],
    ["robot", "add", "ci"],
    ["gc", "--dry-run"],
    ["scrub"],
]


def _portside(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`portside ARGS` run in `cwd` with only the PORTSIDE_* settings given here."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PORTSIDE_")}
    return subprocess.run(
        [sys.executable, "-m", "portside", *args],
        cwd=cwd,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _says_how_to_point_it(stderr: str) -> None:
    for way in ("--data-dir DIR", "--config FILE", "PORTSIDE_DATA_DIR"):
        assert way in stderr, stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_command_where_there_is_no_registry_makes_none_and_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for name in [name for name in os.environ if name.startswith("PORTSIDE_")]:
        monkeypatch.delenv(name)
    refused = CliRunner().invoke(app, command)
    assert refused.exit_code == 1, refused.output
    assert f"no Portside registry at data directory {elsewhere / 'portside-data'}:" in refused.stderr
    assert f"its database {elsewhere / 'portside-data' / 'portside.db'} does not exist" in refused.stderr
    _says_how_to_point_it(refused.stderr)
    assert list(elsewhere.iterdir()) == []  # nothing made


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Portside]:
    running = Portside(data_dir=tmp_path / "registry" / "data", open_registry=False).start()
    yield running
    running.stop()


def test_pointed_at_the_servers_registry_the_commands_find_it(server: Portside, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert _portside(elsewhere, "project", "add", "team").returncode == 1  # looks in ./portside-data

    by_flag = _portside(elsewhere, "project", "add", "team", "--data-dir", str(server.data_dir))
    assert by_flag.returncode == 0 and "created project team" in by_flag.stdout, by_flag.stderr
    by_variable = _portside(elsewhere, "user", "list", PORTSIDE_DATA_DIR=str(server.data_dir))
    assert by_variable.returncode == 0 and "\tadmin\tadmin" in by_variable.stdout, by_variable.stderr
    config = tmp_path / "portside.yaml"
    config.write_text(f"data_dir: {server.data_dir}\n")
    by_config = _portside(elsewhere, "project", "list", "--config", str(config))
    assert by_config.returncode == 0 and "\tteam\tprivate\tadmin" in by_config.stdout, by_config.stderr
    assert list(elsewhere.iterdir()) == []


def _tables(backing: Backing, database_url: str) -> str:
    database = database_url.rsplit("/", 1)[1]
    sql = "SELECT string_agg(table_name, ',') FROM information_schema.tables WHERE table_schema = 'public'"
    return backing.postgres.psql(sql, database=database).stdout.strip()


def test_with_postgresql_a_database_without_the_schema_is_no_registry(tmp_path: Path, backing: Backing) -> None:
    database_url = backing.postgres.create_database()
    data_dir = tmp_path / "data"
    settings = {"PORTSIDE_DATABASE_URL": database_url, "PORTSIDE_DATA_DIR": str(data_dir)}
    refused = _portside(tmp_path, "user", "list", **settings)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"no Portside registry at data directory {data_dir}: its database {database_url}" in refused.stderr
    assert "holds no Portside schema" in refused.stderr
    _says_how_to_point_it(refused.stderr)
    assert _tables(backing, database_url) == ""  # no schema made

    assert _portside(tmp_path, "migrate", **settings).returncode == 0  # migrate makes one, as serve does
    assert _portside(tmp_path, "user", "list", **settings).returncode == 0
