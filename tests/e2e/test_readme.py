"""The README's shell examples run, in order and as written, against Portside started the
README's way.

The convention for README.md, for everyone who edits it:

- Every fenced block opened with ```sh is an example a reader types into a shell. This test
  takes them all from README.md, in order, and runs them in ONE bash session under
  `set -Eeuo pipefail`: a variable one block sets is there for the blocks after it, and the
  first command that fails fails the test with the README line it is on.
- They run as on a fresh machine, after the README's first command installed Portside and
  started it, and `./scripts/test` installed the test tools (docker, podman, skopeo, curl,
  jq, busybox-static): in the clone's directory (here a temporary one, with
  `.venv/bin/portside` as ./scripts/install makes it), with `portside serve` running there
  (started by this test, with no settings, as that first command does; when the examples
  `read` the admin's password, they are given the one it printed).
- So write them to run in order: a name an earlier example created is never created again
  (that is a 409), a placeholder is a variable an earlier example set ($PASSWORD, $SECRET,
  $PROJECT_ID), and nothing needs a terminal (`--password-stdin`, not a prompt).
- A block that cannot run here (it installs something, starts or configures a service) is
  marked by the HTML comment `<!-- not run by tests/e2e/test_readme.py: WHY -->` on the line
  right before its fence; readers do not see it. Keep these few. Fences of another language,
  or of none (diagrams, layouts, YAML), are not run.
- All this test changes: the examples' `127.0.0.1:5000` becomes a free port (this machine's
  5000 may be taken), and so does `127.0.0.1:5001`, where an example starts a second server;
  curl runs with `--fail-with-body` (from a .curlrc), so an error answer fails its block
  rather than scroll by; docker and podman keep their state and credentials
  in the test's own places (the suite's docker daemon and podman storage).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.clients import DockerDaemon, Podman, require
from tests.servers import free_port, wait_http

pytestmark = pytest.mark.e2e

README = Path(__file__).parents[2] / "README.md"
NOT_RUN = re.compile(r"^<!--\s*not run by tests/e2e/test_readme\.py\b")
_FENCE = re.compile(r"^```(\S*)\s*$")
_PRINTED_PASSWORD = re.compile(r"created the admin account with password (\S+)")
_README_LISTEN = "127.0.0.1:5000"
_README_SECOND_LISTEN = "127.0.0.1:5001"  # a second server an example starts itself


@dataclass(frozen=True)
class Block:
    """A fenced block of README.md: the line numbers (1-based) of its content, and its text."""

    language: str
    first_line: int
    lines: tuple[str, ...]
    marked_not_run: bool

    @property
    def runs(self) -> bool:
        return self.language == "sh" and not self.marked_not_run


def readme_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = text.splitlines()
    n = 0
    while n < len(lines):
        opened = _FENCE.match(lines[n])
        if opened is None:
            n += 1
            continue
        end = next((m for m in range(n + 1, len(lines)) if lines[m].startswith("```")), None)
        assert end is not None, f"README.md:{n + 1}: the block opened here is never closed"
        marked = n > 0 and bool(NOT_RUN.match(lines[n - 1]))
        blocks.append(Block(opened.group(1), n + 2, tuple(lines[n + 1 : end]), marked))
        n = end + 1
    return blocks


def readme_script(text: str, listen: str, second_listen: str = _README_SECOND_LISTEN) -> str:
    """The runnable blocks as one bash script whose line N is README.md's line N, so bash's
    own line numbers are the README's; every other line is left empty."""
    script = [""] * len(text.splitlines())
    # README.md's first line is its title, never code: the script's options go there.
    script[0] = "set -Eeuo pipefail; trap 'echo \"README.md:$LINENO: failed with status $?\" >&2' ERR"
    for block in readme_blocks(text):
        if block.runs:
            for offset, line in enumerate(block.lines):
                script[block.first_line - 1 + offset] = line.replace(_README_LISTEN, listen).replace(
                    _README_SECOND_LISTEN, second_listen
                )
    return "\n".join(script) + "\n"


def test_the_readme_marks_few_blocks_as_not_run() -> None:
    blocks = readme_blocks(README.read_text())
    shell = [b for b in blocks if b.language == "sh"]
    assert len([b for b in shell if b.marked_not_run]) <= 3, [b.first_line for b in shell if b.marked_not_run]
    assert len([b for b in shell if b.runs]) >= 5
    # A marker is only ever right before a shell block.
    text = README.read_text().splitlines()
    markers = [n for n, line in enumerate(text) if NOT_RUN.match(line)]
    assert all(_FENCE.match(text[n + 1]) and text[n + 1] == "```sh" for n in markers), markers


@dataclass(frozen=True)
class ReadersMachine:
    clone: Path  # the clone's directory, as the README's first command leaves it
    env: dict[str, str]  # the reader's environment
    listen: str  # where `portside serve` listens, for the README's 127.0.0.1:5000


@pytest.fixture
def machine(tmp_path: Path, docker_daemon: DockerDaemon, podman: Podman) -> Iterator[ReadersMachine]:
    clone = tmp_path / "portside"
    (clone / ".venv" / "bin").mkdir(parents=True)
    portside = clone / ".venv" / "bin" / "portside"
    portside.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m portside "$@"\n')
    portside.chmod(0o755)
    tools = tmp_path / "tools"
    tools.mkdir()
    shim = tools / "podman"  # podman on the suite's private storage
    shim.write_text(f'#!/bin/sh\nexec {shlex.join(podman.base())} "$@"\n')
    shim.chmod(0o755)
    curl_home = tmp_path / "curl"
    curl_home.mkdir()
    (curl_home / ".curlrc").write_text("fail-with-body\n")
    for tool in ("docker", "skopeo", "curl", "jq", "busybox"):
        require(tool)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTSIDE_")}
    env.update(docker_daemon.env)
    env.update(
        PATH=f"{tools}:{env['PATH']}",
        DOCKER_CONFIG=str(tmp_path / "docker-config"),
        CURL_HOME=str(curl_home),
    )
    listen = f"127.0.0.1:{free_port()}"
    yield ReadersMachine(clone, env, listen)
    # What the examples made in the daemons the suite shares.
    pushed = [f"{listen}/library/busybox", f"{listen}/web/busybox"]
    docker_daemon.docker("rmi", "--force", "busybox", "app", f"{listen}/library/app", *pushed, check=False)
    podman("rmi", "--force", pushed[0], check=False)


def test_the_readme_runs_as_written(machine: ReadersMachine, tmp_path: Path) -> None:
    log_path = tmp_path / "serve.log"
    # The README's first command, run in the clone: `.venv/bin/portside serve`.
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [str(machine.clone / ".venv" / "bin" / "portside"), "serve"],
            cwd=machine.clone,
            env={**machine.env, "PORTSIDE_LISTEN": machine.listen},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_http(f"http://{machine.listen}/v2/", server, timeout=60)
        printed = _PRINTED_PASSWORD.search(log_path.read_text())
        assert printed is not None, log_path.read_text()
        script = tmp_path / "readme.sh"
        script.write_text(readme_script(README.read_text(), machine.listen, f"127.0.0.1:{free_port()}"))
        run = subprocess.run(
            ["bash", str(script)],
            cwd=machine.clone,
            env=machine.env,
            input=printed.group(1) + "\n",  # what the reader pastes when the examples ask
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert run.returncode == 0, f"--- stdout ---\n{run.stdout}\n--- stderr ---\n{run.stderr}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
