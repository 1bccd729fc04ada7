"""S3, PostgreSQL and Redis are extras: one machine installs and loads none of their clients,
and a setting that needs one that is missing is refused at start with the extra to install."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port, wait_http

REPOSITORY = Path(__file__).parents[2]
CLIENT_LIBRARIES = ("aiobotocore", "botocore", "boto3", "asyncpg", "redis")

_SINGLE_MACHINE_SERVER = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import portside.cli
    from portside import wiring
    from portside.config import load_settings

    settings = load_settings(data_dir=Path(sys.argv[1]))
    wiring.migrate(settings)
    wiring.build(settings)
    print(" ".join(sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[2:]))))
    """
)


def test_the_single_machine_server_loads_none_of_the_extras_libraries(tmp_path: Path) -> None:
    # Here they are installed (the test extra has them all): nothing may import them.
    loaded = subprocess.run(
        [sys.executable, "-c", _SINGLE_MACHINE_SERVER, str(tmp_path / "data"), *CLIENT_LIBRARIES],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == ""


@pytest.fixture(scope="module")
def bare_install(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A new virtualenv with Portside installed from this tree, without any extra."""
    root = tmp_path_factory.mktemp("bare")
    tree = root / "portside"
    tree.mkdir()
    # A copy, so that building the package leaves nothing in the working tree.
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPOSITORY / name, tree / name)
    shutil.copytree(REPOSITORY / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(tree)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    yield venv


def _bare_env() -> dict[str, str]:
    # Nothing of this checkout's environment: not its PYTHONPATH, not its settings.
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("PORTSIDE_")}


@pytest.mark.slow
def test_a_bare_install_has_none_of_the_extras_and_serves_one_machine(bare_install: Path, tmp_path: Path) -> None:
    python = str(bare_install / "bin" / "python")
    probe = "import importlib.util, sys; print([m for m in sys.argv[1:] if importlib.util.find_spec(m)])"
    found = subprocess.run(
        [python, "-c", probe, *CLIENT_LIBRARIES], env=_bare_env(), capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "[]"

    port = free_port()
    command = [str(bare_install / "bin" / "portside"), "serve", "--listen", f"127.0.0.1:{port}"]
    with open(tmp_path / "serve.log", "wb") as log:
        server = subprocess.Popen(
            [*command, "--data-dir", str(tmp_path / "data")], env=_bare_env(), stdout=log, stderr=log
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/", server)
        # The package data came along: the docs' vendored Swagger UI.
        page = httpx.get(f"http://127.0.0.1:{port}/api/v2.0/docs", timeout=30).text
        script = re.search(r'<script src="(/static/vendor/[^"]+)"', page)
        assert script is not None, page
        assert httpx.get(f"http://127.0.0.1:{port}{script.group(1)}", timeout=30).status_code == 200
    finally:
        server.terminate()
        assert server.wait(timeout=30) == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("settings", "extras", "library"),
    [
        ({"PORTSIDE_STORAGE_URL": "s3://bucket/registry"}, "s3", "aiobotocore"),
        ({"PORTSIDE_DATABASE_URL": "postgresql://portside:secret@db.example/portside"}, "postgres", "asyncpg"),
        ({"PORTSIDE_REDIS_URL": "redis://127.0.0.1:6379/0"}, "redis", "redis"),
        (
            {"PORTSIDE_STORAGE_URL": "s3://bucket/registry", "PORTSIDE_REDIS_URL": "redis://127.0.0.1:6379/0"},
            "s3,redis",
            "aiobotocore",
        ),
    ],
    ids=["s3", "postgres", "redis", "s3+redis"],
)
def test_a_setting_that_needs_a_missing_extra_is_refused_at_start_naming_it(
    bare_install: Path, tmp_path: Path, settings: dict[str, str], extras: str, library: str
) -> None:
    portside = str(bare_install / "bin" / "portside")
    for command in (["serve", "--listen", f"127.0.0.1:{free_port()}"], ["migrate"], ["user", "list"]):
        refused = subprocess.run(
            [portside, *command, "--data-dir", str(tmp_path / "data")],
            env={**_bare_env(), **settings},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert f"the {library} library (portside[" in refused.stderr
        assert f"pip install 'portside[{extras}]'" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert "secret" not in refused.stderr
