"""Docker Content Trust against Portside and Debian's Notary (notary-server, notary-signer).

notary-server takes Portside's tokens; the real dockerd and docker CLI push with
DOCKER_CONTENT_TRUST=1, add a signer and `docker trust sign`, `docker trust inspect`,
pull trusted (and fail to, for a tag nobody signed); then Portside's ContentTrust reads
the same metadata from Notary and agrees.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from portside.auth.tokens import TokenService
from portside.mgmt.content_trust import ContentTrust
from portside.remote.notary import NotaryClient
from tests.e2e.clients import DockerDaemon, run
from tests.e2e.images import busybox_rootfs_tar
from tests.e2e.notary import NOTARY_SERVICE, NotaryStack
from tests.servers import ADMIN_PASSWORD, Portside, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def trust_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Portside, NotaryStack]]:
    root = tmp_path_factory.mktemp("content-trust")
    notary_port = free_port()
    portside = Portside(
        data_dir=root / "data",
        open_registry=False,
        env={
            "PORTSIDE_NOTARY_SERVICE": NOTARY_SERVICE,
            "PORTSIDE_NOTARY_URL": f"https://127.0.0.1:{notary_port}",
            "PORTSIDE_NOTARY_CA_FILE": str(root / "notary" / "ca.crt"),
        },
    ).start()
    notary = NotaryStack(
        root / "notary",
        realm=f"{portside.url}/service/token",
        token_bundle=root / "data" / "token-key.crt",
        port=notary_port,
    )
    try:
        notary.start()
        yield portside, notary
    finally:
        notary.stop()
        portside.stop()


def _docker_env(daemon: DockerDaemon, notary: NotaryStack, home: Path) -> dict[str, str]:
    config = home / "docker"
    tls = config / "tls" / f"127.0.0.1:{notary.port}"
    tls.mkdir(parents=True, exist_ok=True)
    shutil.copy(notary.ca, tls / "ca.crt")
    return {
        **daemon.env,
        "HOME": str(home),
        "DOCKER_CONFIG": str(config),
        "DOCKER_CONTENT_TRUST_SERVER": notary.url,
        "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE": "root-passphrase-1",
        "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "repository-passphrase-1",
    }


def test_docker_content_trust(
    docker_daemon: DockerDaemon, trust_stack: tuple[Portside, NotaryStack], tmp_path: Path
) -> None:
    portside, notary = trust_stack
    env = _docker_env(docker_daemon, notary, tmp_path)
    trusted = {**env, "DOCKER_CONTENT_TRUST": "1"}

    def docker(*args: str | Path, trust: bool = False, check: bool = True):
        return run(["docker", *args], env=trusted if trust else env, check=check, timeout=180)

    repo = f"{portside.host}/library/dct-{tmp_path.name[-6:].lower().replace('_', '')}"
    run(
        ["sh", "-c", f'printf %s "$PW" | docker login {portside.host} -u admin --password-stdin'],
        env={**env, "PW": ADMIN_PASSWORD},
    )
    signed_rootfs = busybox_rootfs_tar(tmp_path / "signed.tar", {"etc/marker": b"signed\n"})
    docker("import", signed_rootfs, f"{repo}:v1")
    push = docker("push", f"{repo}:v1", trust=True)
    assert "Signing and pushing trust metadata" in push.stdout + push.stderr, push.stdout + push.stderr
    v1 = re.search(r"v1: digest: (sha256:[0-9a-f]{64})", push.stdout)
    assert v1, push.stdout

    # a signer of her own, then `docker trust sign` for v2 (into targets/releases and targets/alice)
    keys = tmp_path / "keys"
    keys.mkdir()
    docker("trust", "key", "generate", "alice", "--dir", keys)
    docker("trust", "signer", "add", "--key", keys / "alice.pub", "alice", repo)
    docker("tag", f"{repo}:v1", f"{repo}:v2")
    sign = docker("trust", "sign", f"{repo}:v2")
    assert "Successfully signed" in sign.stdout + sign.stderr, sign.stdout + sign.stderr

    inspect = json.loads(docker("trust", "inspect", repo).stdout)
    signed_tags = {s["SignedTag"]: s for s in inspect[0]["SignedTags"]}
    assert set(signed_tags) >= {"v1", "v2"}, signed_tags
    assert "alice" in signed_tags["v2"]["Signers"], signed_tags["v2"]
    assert [s["Name"] for s in inspect[0]["Signers"]] == ["alice"], inspect[0]["Signers"]
    v2_digest = "sha256:" + signed_tags["v2"]["Digest"]
    assert v2_digest == v1.group(1)  # the same image, signed under two tags

    # an unsigned tag of another image, pushed without content trust
    unsigned_rootfs = busybox_rootfs_tar(tmp_path / "unsigned.tar", {"etc/marker": b"unsigned\n"})
    docker("import", unsigned_rootfs, f"{repo}:unsigned")
    unsigned_push = docker("push", f"{repo}:unsigned")
    unsigned = re.search(r"unsigned: digest: (sha256:[0-9a-f]{64})", unsigned_push.stdout)
    assert unsigned, unsigned_push.stdout

    # trusted pulls: the signed tag resolves through Notary, the unsigned one is refused
    docker("rmi", f"{repo}:v1", f"{repo}:v2", f"{repo}:unsigned")
    pulled = docker("pull", f"{repo}:v2", trust=True)
    assert f"{repo}@{v2_digest}" in pulled.stdout + pulled.stderr, pulled.stdout + pulled.stderr
    refused = docker("pull", f"{repo}:unsigned", trust=True, check=False)
    assert refused.returncode != 0
    assert "trust data" in (refused.stdout + refused.stderr).lower(), refused.stdout + refused.stderr

    # Portside reads the same signed targets from Notary, with a token of its own
    key = serialization.load_pem_private_key((portside.data_dir / "token-key.pem").read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    tokens = TokenService(key, "portside", 300, 300)
    client = NotaryClient(notary.url, ContentTrust.token_minter(tokens, NOTARY_SERVICE), ca_file=notary.ca)
    trust = ContentTrust(client, portside.host)
    repository = repo.split("/", 1)[1]

    async def check() -> None:
        try:
            good = await trust.verify(repository, v2_digest)
            assert good.verified, good.reason
            assert good.kind == "notary"
            assert good.signer is not None and "targets/releases: v2" in good.signer, good.signer
            by_tag = await trust.verify(repository, v2_digest, tag="v1")
            assert by_tag.verified, by_tag.reason
            bad = await trust.verify(repository, unsigned.group(1))
            assert not bad.verified and bad.reason and "no signed target" in bad.reason, bad
            nothing = await trust.verify("library/never-signed", v2_digest)
            assert not nothing.verified and nothing.reason and "no trust data" in nothing.reason, nothing
            assert trust.recorded[f"{portside.host}/{repository}"], "the root was not recorded on first use"
        finally:
            await client.aclose()

    asyncio.run(check())

    # Notary itself takes nothing but Portside's tokens
    async def anonymous() -> None:
        bare = NotaryClient(notary.url, lambda gun: None, ca_file=notary.ca)
        try:
            verdict = await ContentTrust(bare, portside.host).verify(repository, v2_digest)
        finally:
            await bare.aclose()
        assert not verdict.verified and verdict.reason and "refused" in verdict.reason, verdict

    asyncio.run(anonymous())

    # a Notary that cannot be reached is a failed verdict, not an exception
    async def unreachable() -> None:
        gone = NotaryClient(f"https://127.0.0.1:{free_port()}", lambda gun: None, ca_file=notary.ca)
        try:
            verdict = await ContentTrust(gone, portside.host).verify(repository, v2_digest)
        finally:
            await gone.aclose()
        assert not verdict.verified and verdict.reason and "could not be read" in verdict.reason, verdict

    asyncio.run(unreachable())

    # Portside's own pull policy: with require_signature=notary, a plain pull (no content
    # trust on the client) gets what Notary signs and is refused, saying why, what it does not.
    api = httpx.Client(base_url=f"{portside.url}/api/v2.0", auth=("admin", ADMIN_PASSWORD), timeout=60)
    try:
        assert api.put("/projects/library", json={"metadata": {"require_signature": "notary"}}).status_code == 200
        docker("pull", f"{repo}:v2")
        blocked = docker("pull", f"{repo}:unsigned", check=False)
        assert blocked.returncode != 0, blocked.stdout
        assert "Docker Content Trust" in blocked.stdout + blocked.stderr, blocked.stdout + blocked.stderr
        dry = api.get(f"/projects/library/repositories/{repository.split('/', 1)[1]}/artifacts/unsigned/policy").json()
        assert dry["allowed"] is False and "no signed target" in dry["rules"][1]["reason"], dry
        # The project's trust policy pins the repository's Notary root: another key refuses
        # what Notary signs, the root's own key (as recorded on first use) lets it through.
        name = repository.split("/", 1)[1]
        manifest = f"{portside.url}/v2/{repository}/manifests/v2"
        accept = {"Accept": "application/vnd.docker.distribution.manifest.v2+json"}
        pins = {"notary": {"root_keys": [{"repository": name, "keys": ["ab" * 32]}]}}
        assert api.put("/projects/library/trust", json=pins).status_code == 200
        pinned_away = httpx.get(manifest, headers=accept, auth=("admin", ADMIN_PASSWORD), timeout=60)
        assert pinned_away.status_code == 412 and "pinned root keys" in pinned_away.text, pinned_away.text
        recorded = sorted(trust.recorded[f"{portside.host}/{repository}"])
        pins = {"notary": {"root_keys": [{"repository": "*", "keys": recorded}]}}
        assert api.put("/projects/library/trust", json=pins).status_code == 200
        assert httpx.get(manifest, headers=accept, auth=("admin", ADMIN_PASSWORD), timeout=60).status_code == 200
    finally:
        api.put("/projects/library/trust", json={})
        api.put("/projects/library", json={"metadata": {"require_signature": ""}})
        api.close()
