"""The access matrix with real clients: docker login/push/pull, podman, skopeo --creds.

Every principal signs in with docker (robots too, `--password-stdin`) on a docker config
directory of its own, then pushes into and pulls from the private and public projects;
podman and skopeo cover a subset per role, skopeo also deleting. Each outcome is Harbor's
(`accounts.expected`); a refused operation fails with the client's denied/unauthorized
error and the registry holds nothing new afterwards.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from portside.meta.sql.accounts import SqlAccounts
from tests.access.accounts import (
    ADMIN,
    ANONYMOUS,
    HIDDEN,
    PRINCIPALS,
    PRIVATE,
    PUBLIC,
    Principal,
    expected,
    project_exists,
    run_store,
)
from tests.access.conftest import AclServer
from tests.access.flow import describe
from tests.e2e.clients import CommandFailed, DockerDaemon, Podman, json_out, require, skopeo
from tests.e2e.images import Image, OciLayout, busybox_layout, busybox_rootfs_tar

pytestmark = pytest.mark.e2e

NO_TLS = "--tls-verify=false"
REFUSED = re.compile(
    r"denied|unauthorized|invalid username/password|authentication required|insufficient.scope|403 \(Forbidden\)", re.I
)
LOCAL_IMAGE = "portside-access-src:latest"


def _assert_refused(proc: subprocess.CompletedProcess[str], what: str) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"{what} should have been refused:\n{out}"
    assert REFUSED.search(out), f"{what} failed, but not with a denied/unauthorized error:\n{out}"


@dataclass
class Seed:
    layout: OciLayout
    image: Image


@pytest.fixture(scope="module")
def seed(acl: AclServer, tmp_path_factory: pytest.TempPathFactory) -> Seed:
    """A runnable busybox image in every project (`<project>/base:v1`), copied by the admin."""
    layout, image = busybox_layout(tmp_path_factory.mktemp("access-layout") / "layout", tag="v1", marker="access")
    for project in (PUBLIC, PRIVATE, HIDDEN):
        skopeo(
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            f"{ADMIN.username}:{ADMIN.password}",
            f"oci:{layout.root}:v1",
            f"docker://{acl.host}/{project}/base:v1",
        )
    return Seed(layout, image)


# --------------------------------------------------------------------------- docker


@dataclass
class DockerAs:
    """docker with a config directory (credentials) of one principal's own."""

    daemon: DockerDaemon
    config: Path

    def __call__(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [require("docker"), "--config", str(self.config), *args]
        proc = subprocess.run(
            argv,
            env={**os.environ, **self.daemon.env},
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if check and proc.returncode != 0:
            raise CommandFailed(
                f"command failed with exit status {proc.returncode}: {' '.join(argv)}\n"
                f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
            )
        return proc


@pytest.fixture(scope="module")
def oauth_form(acl: AclServer) -> str | None:
    """What is wrong with the OAuth2 token form, or None.

    docker keeps the refresh token `docker login` gets and then asks for tokens with the
    OAuth2 form (grant_type=refresh_token); without a working form each of its requests
    retries for a minute. Signed-in docker cases fail at once with this instead."""
    r = httpx.post(
        f"{acl.url}/service/token",
        data={
            "grant_type": "password",
            "username": ADMIN.username or "",
            "password": ADMIN.password or "",
            "service": "portside",
            "client_id": "docker",
            "access_type": "offline",
            "scope": "repository:pub/base:pull",
        },
        timeout=30.0,
    )
    if r.status_code != 200 or "refresh_token" not in r.json():
        return f"the OAuth2 token form does not work, so docker cannot use its login: {describe(r)}"
    return None


@pytest.fixture(scope="module")
def docker_source(docker_daemon: DockerDaemon, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("docker-src")
    rootfs = busybox_rootfs_tar(root / "rootfs.tar", {"etc/marker": b"pushed-through-access-control\n"})
    docker_daemon.docker("import", "--change", 'CMD ["/bin/sh"]', rootfs, LOCAL_IMAGE)
    yield LOCAL_IMAGE
    docker_daemon.docker("rmi", "--force", LOCAL_IMAGE, check=False)


@pytest.mark.parametrize("who", list(PRINCIPALS.values()), ids=str)
def test_docker_login_push_pull(
    acl: AclServer,
    seed: Seed,
    docker_daemon: DockerDaemon,
    docker_source: str,
    oauth_form: str | None,
    tmp_path: Path,
    who: Principal,
) -> None:
    docker = DockerAs(docker_daemon, tmp_path / "docker-config")
    docker.config.mkdir()
    host = acl.host
    if who is not ANONYMOUS:
        login = docker("login", host, "-u", who.username or "", "--password-stdin", stdin=who.password, check=False)
        if not who.can_login:
            _assert_refused(login, f"docker login as {who.username}")
            config = docker.config / "config.json"
            stored = json.loads(config.read_text() or "{}") if config.exists() else {}
            assert host not in stored.get("auths", {}), stored
            return
        assert login.returncode == 0, login.stdout + login.stderr
        assert "Login Succeeded" in login.stdout
        if oauth_form:
            pytest.fail(oauth_form, pytrace=False)

    before = acl.repositories()
    for project in (PRIVATE, PUBLIC):
        repo = f"{project}/dk-{who.key}"
        ref = f"{host}/{repo}:v1"
        docker("tag", docker_source, ref)
        try:
            push = docker("push", ref, check=False)
        finally:
            docker("rmi", ref, check=False)
        if expected(who, project, "push"):
            assert push.returncode == 0, push.stdout + push.stderr
            assert acl.tags(repo) == ["v1"]
        else:
            _assert_refused(push, f"docker push {ref} as {who}")
            assert acl.tags(repo) is None, f"{repo} exists after a refused push"

        base = f"{host}/{project}/base:v1"
        pull = docker("pull", base, check=False)
        try:
            if expected(who, project, "pull"):
                assert pull.returncode == 0, pull.stdout + pull.stderr
                assert f"Digest: {seed.image.manifest.digest}" in pull.stdout, pull.stdout
            else:
                _assert_refused(pull, f"docker pull {base} as {who}")
        finally:
            docker("rmi", "--force", base, check=False)

    pushed = {f"{p}/dk-{who.key}" for p in (PRIVATE, PUBLIC) if expected(who, p, "push")}
    assert acl.repositories() - before == pushed


def test_docker_pushes_into_missing_project_are_denied(
    acl: AclServer, docker_daemon: DockerDaemon, docker_source: str, oauth_form: str | None, tmp_path: Path
) -> None:
    if oauth_form:
        pytest.fail(oauth_form, pytrace=False)
    docker = DockerAs(docker_daemon, tmp_path / "docker-config")
    docker.config.mkdir()
    docker("login", acl.host, "-u", ADMIN.username or "", "--password-stdin", stdin=ADMIN.password)
    ref = f"{acl.host}/dockermissing/app:v1"
    docker("tag", docker_source, ref)
    try:
        push = docker("push", ref, check=False)
    finally:
        docker("rmi", ref, check=False)
    _assert_refused(push, "docker push into a missing project")
    out = push.stdout + push.stderr
    # docker shows the registry's DENIED message; it must say which project is missing
    assert re.search(r"denied:.*\bproject\b.*\bdockermissing\b", out, re.I), out
    assert not project_exists(acl.data_dir, "dockermissing")
    assert "dockermissing/app" not in acl.repositories()


# --------------------------------------------------------------------------- podman


@pytest.fixture(scope="module")
def podman_source(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("podman-src")
    rootfs = busybox_rootfs_tar(root / "rootfs.tar", {"etc/marker": b"pushed-by-podman\n"})
    local = "localhost/portside-access-src:v1"
    podman("import", "--change", 'CMD ["/bin/sh"]', rootfs, local)
    return local


PODMAN_CASES = ["developer", "guest", "outsider", "anonymous", "rpusher", "rpuller", "rdisabled"]


@pytest.mark.parametrize("key", PODMAN_CASES)
def test_podman_login_push_pull(
    acl: AclServer, seed: Seed, podman: Podman, podman_source: str, tmp_path: Path, key: str
) -> None:
    who = PRINCIPALS[key]
    authfile = tmp_path / "auth.json"
    authfile.write_text('{"auths": {}}')
    if who is not ANONYMOUS:
        login = podman(
            "login",
            "--authfile",
            authfile,
            NO_TLS,
            "-u",
            who.username or "",
            "-p",
            who.password or "",
            acl.host,
            check=False,
        )
        if not who.can_login:
            _assert_refused(login, f"podman login as {who.username}")
            return
        assert login.returncode == 0, login.stdout + login.stderr

    repo = f"{PRIVATE}/pm-{who.key}"
    push = podman("push", "--authfile", authfile, NO_TLS, podman_source, f"{acl.host}/{repo}:v1", check=False)
    if expected(who, PRIVATE, "push"):
        assert push.returncode == 0, push.stdout + push.stderr
        assert acl.tags(repo) == ["v1"]
    else:
        _assert_refused(push, f"podman push as {who}")
        assert acl.tags(repo) is None

    for project in (PRIVATE, PUBLIC):
        base = f"{acl.host}/{project}/base:v1"
        pull = podman("pull", "--authfile", authfile, NO_TLS, base, check=False)
        try:
            if expected(who, project, "pull"):
                assert pull.returncode == 0, pull.stdout + pull.stderr
                digest = podman("image", "inspect", "--format", "{{.Digest}}", base).stdout.strip()
                assert digest == seed.image.manifest.digest
            else:
                _assert_refused(pull, f"podman pull {base} as {who}")
        finally:
            podman("rmi", "--force", base, check=False)


# --------------------------------------------------------------------------- skopeo


def _creds(who: Principal) -> list[str]:
    return ["--no-creds"] if who is ANONYMOUS else ["--creds", who.creds]


SKOPEO_INSPECT = [
    ("lguest", PRIVATE),
    ("guest", PRIVATE),
    ("outsider", PRIVATE),
    ("outsider", PUBLIC),
    ("anonymous", PRIVATE),
    ("anonymous", PUBLIC),
    ("rpuller", PRIVATE),
    ("rpuller", HIDDEN),
    ("rsystem", HIDDEN),
    ("rexpired", PUBLIC),
    ("rdisabled", PRIVATE),
    ("padmin", HIDDEN),
    ("admin", HIDDEN),
]


@pytest.mark.parametrize(("key", "project"), SKOPEO_INSPECT, ids=[f"{k}-{p}" for k, p in SKOPEO_INSPECT])
def test_skopeo_inspect(acl: AclServer, seed: Seed, key: str, project: str) -> None:
    who = PRINCIPALS[key]
    ref = f"docker://{acl.host}/{project}/base:v1"
    proc = skopeo("inspect", NO_TLS, *_creds(who), ref, check=False)
    allowed = expected(who, project, "pull") if project != HIDDEN else (who.sysadmin or "*" in who.grants)
    if allowed:
        assert proc.returncode == 0, proc.stderr
        assert json_out(proc)["Digest"] == seed.image.manifest.digest
    else:
        _assert_refused(proc, f"skopeo inspect {ref} as {who}")


SKOPEO_COPY = ["developer", "guest", "lguest", "rpusher", "rpuller", "rcleaner", "anonymous", "rexpired"]


@pytest.mark.parametrize("key", SKOPEO_COPY)
def test_skopeo_copy(acl: AclServer, seed: Seed, key: str) -> None:
    who = PRINCIPALS[key]
    repo = f"{PRIVATE}/sk-{who.key}"
    creds = ["--dest-no-creds"] if who is ANONYMOUS else ["--dest-creds", who.creds]
    before = acl.repositories()
    proc = skopeo(
        "copy",
        "--dest-tls-verify=false",
        *creds,
        f"oci:{seed.layout.root}:v1",
        f"docker://{acl.host}/{repo}:v1",
        check=False,
    )
    if expected(who, PRIVATE, "push"):
        assert proc.returncode == 0, proc.stderr
        assert acl.tags(repo) == ["v1"]
        assert acl.has_manifest(repo, seed.image.manifest.digest)
    else:
        _assert_refused(proc, f"skopeo copy to {repo} as {who}")
        assert acl.tags(repo) is None
        assert acl.repositories() == before


SKOPEO_DELETE = ["padmin", "maintainer", "developer", "guest", "rcleaner", "rpusher", "outsider", "anonymous", "admin"]


@pytest.mark.parametrize("key", SKOPEO_DELETE)
def test_skopeo_delete(acl: AclServer, seed: Seed, key: str) -> None:
    who = PRINCIPALS[key]
    repo = f"{PRIVATE}/skdel-{who.key}"
    skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        f"{ADMIN.username}:{ADMIN.password}",
        f"oci:{seed.layout.root}:v1",
        f"docker://{acl.host}/{repo}:v1",
    )
    digest = seed.image.manifest.digest
    proc = skopeo("delete", NO_TLS, *_creds(who), f"docker://{acl.host}/{repo}@{digest}", check=False)
    if expected(who, PRIVATE, "delete"):
        assert proc.returncode == 0, proc.stderr
        assert not acl.has_manifest(repo, digest)
    else:
        _assert_refused(proc, f"skopeo delete in {repo} as {who}")
        assert acl.has_manifest(repo, digest) and acl.tags(repo) == ["v1"]


# --------------------------------------------------------------------------- password hashes


def test_a_hash_with_older_argon2_parameters_is_renewed_when_skopeo_signs_in(acl: AclServer, seed: Seed) -> None:
    """A user whose stored hash predates the current parameters (argon2-cffi's defaults,
    64 MiB) signs in through the token service; the hash is made again with the current ones
    and the same password keeps working."""
    password = "Older-Hash-Passw0rd"
    older = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4).hash(password)

    async def add(store: SqlAccounts) -> None:
        await store.create_user("olderhash", older, email=None, realname="", comment="", sysadmin=False)

    async def stored_hash(store: SqlAccounts) -> str:
        user = await store.get_user("olderhash")
        assert user is not None
        return user.password_hash

    run_store(acl.data_dir, add)
    ref = f"docker://{acl.host}/{PUBLIC}/base:v1"
    proc = skopeo("inspect", NO_TLS, "--creds", f"olderhash:{password}", ref)
    assert json_out(proc)["Digest"] == seed.image.manifest.digest
    renewed = run_store(acl.data_dir, stored_hash)
    assert renewed != older and renewed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    proc = skopeo("inspect", NO_TLS, "--creds", f"olderhash:{password}", ref)
    assert json_out(proc)["Digest"] == seed.image.manifest.digest
    _assert_refused(
        skopeo("inspect", NO_TLS, "--creds", "olderhash:Wrong-Passw0rd", ref, check=False),
        "skopeo inspect with a wrong password",
    )
    assert run_store(acl.data_dir, stored_hash) == renewed
