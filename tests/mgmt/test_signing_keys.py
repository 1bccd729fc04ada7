"""The keys that sign on push, without a server: an external command driven by the real
`openssl` over a key file only openssl reads (the payload or its digest on stdin, the
signature on stdout, DER, raw r‖s or base64), its failures (exit status, timeout, too much
output, garbage, a program that is not there), and plug-ins found by name in the
`portside.signers` entry-point group of a distribution on sys.path."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from portside.mgmt.signing_keys import (
    CommandKey,
    SigningFailed,
    SigningKey,
    checked_signature,
    load_plugin,
)
from portside.trust.keys import load_public_key
from tests.mgmt import kms_plugin

PAYLOAD = b'{"critical":{"image":{"docker-manifest-digest":"sha256:00"}}}'


@pytest.fixture
def kms(tmp_path: Path) -> Path:
    """A directory with `key.pem` (an ECDSA P-256 private key) and `pub.pem`, made by openssl."""
    subprocess.run(
        ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(tmp_path / "key.pem")],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["openssl", "pkey", "-in", str(tmp_path / "key.pem"), "-pubout", "-out", str(tmp_path / "pub.pem")],
        check=True,
        capture_output=True,
    )
    return tmp_path


def _verifies(kms: Path, signature: bytes, payload: bytes = PAYLOAD) -> bool:
    return load_public_key((kms / "pub.pem").read_text()).verify(signature, payload)


async def test_openssl_signs_the_payload_from_stdin(kms: Path) -> None:
    key = CommandKey(
        ["openssl", "dgst", "-sha256", "-sign", str(kms / "key.pem")], public_key=(kms / "pub.pem").read_text()
    )
    assert isinstance(key, SigningKey)
    signature = await key.sign(PAYLOAD)
    assert _verifies(kms, signature)
    assert checked_signature(key, await key.public_key_pem(), PAYLOAD, signature) == signature


async def test_a_digest_signing_tool_gets_the_sha256_and_a_command_gives_the_public_key(kms: Path) -> None:
    key = CommandKey(
        ["openssl", "pkeyutl", "-sign", "-inkey", str(kms / "key.pem")],
        public_key_command=["openssl", "pkey", "-in", str(kms / "key.pem"), "-pubout"],
        input="sha256",
    )
    assert load_public_key(await key.public_key_pem()).key_id == load_public_key((kms / "pub.pem").read_text()).key_id
    assert _verifies(kms, await key.sign(PAYLOAD))


async def test_raw_and_base64_signatures_become_cosigns_der(kms: Path) -> None:
    pem = (kms / "pub.pem").read_text()
    raw = (
        "import sys\n"
        "from cryptography.hazmat.primitives import hashes, serialization\n"
        "from cryptography.hazmat.primitives.asymmetric import ec, utils\n"
        "key = serialization.load_pem_private_key(open(sys.argv[1], 'rb').read(), None)\n"
        "r, s = utils.decode_dss_signature(key.sign(sys.stdin.buffer.read(), ec.ECDSA(hashes.SHA256())))\n"
        "sys.stdout.buffer.write(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))\n"
    )
    p1363 = CommandKey([sys.executable, "-c", raw, str(kms / "key.pem")], public_key=pem, signature_form="raw")
    assert _verifies(kms, await p1363.sign(PAYLOAD))
    encoded = CommandKey(
        ["sh", "-c", 'openssl dgst -sha256 -sign "$0" | base64', str(kms / "key.pem")],
        public_key=pem,
        signature_form="base64",
    )
    assert _verifies(kms, await encoded.sign(PAYLOAD))
    short = CommandKey(["printf", "abc"], public_key=pem, signature_form="raw")
    with pytest.raises(SigningFailed, match="printed 3 bytes, not a raw 64-byte signature"):
        await short.sign(PAYLOAD)


async def test_a_failing_command_says_why_and_never_shows_its_arguments(kms: Path) -> None:
    pem = (kms / "pub.pem").read_text()
    failing = CommandKey(["sh", "-c", 'echo "no credentials for $0" >&2; exit 3', "token-s3cr3t"], public_key=pem)
    with pytest.raises(SigningFailed) as raised:
        await failing.sign(PAYLOAD)
    assert str(raised.value).startswith("sh exited with status 3: no credentials")
    assert str(raised.value).count("token-s3cr3t") == 1  # what the program itself said, not its command line
    with pytest.raises(SigningFailed, match="printed more than 65536 bytes"):
        await CommandKey(["head", "-c", "1000000", "/dev/zero"], public_key=pem).sign(PAYLOAD)
    garbage = CommandKey(["echo", "garbage"], public_key=pem)
    with pytest.raises(SigningFailed, match="does not verify with its public key"):
        checked_signature(garbage, pem, PAYLOAD, await garbage.sign(PAYLOAD))


async def test_a_slow_command_is_killed_with_what_it_started(kms: Path, tmp_path: Path) -> None:
    marker = tmp_path / "still-running"
    script = f"(sleep 3; touch {marker}) & sleep 30"
    slow = CommandKey(["sh", "-c", script], public_key=(kms / "pub.pem").read_text(), timeout_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(SigningFailed, match=r"sh did not answer within 0.5s"):
        await slow.sign(PAYLOAD)
    assert time.monotonic() - started < 3
    time.sleep(3.5)
    assert not marker.exists()  # the helper it started in the background was killed too


def test_a_command_is_checked_when_it_is_configured(kms: Path) -> None:
    pem = (kms / "pub.pem").read_text()
    with pytest.raises(ValueError, match="'/no/such/kms-cli' is not found"):
        CommandKey(["/no/such/kms-cli", "sign"], public_key=pem)
    with pytest.raises(ValueError, match="exactly one of a public key PEM and a public key command"):
        CommandKey(["openssl"])
    with pytest.raises(ValueError, match="the signing command's public key is not a public key"):
        CommandKey(["openssl"], public_key="-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")


async def test_a_public_key_command_that_prints_no_key_fails(kms: Path) -> None:
    key = CommandKey(["openssl", "dgst"], public_key_command=["echo", "hello"])
    with pytest.raises(SigningFailed, match="what echo printed is not a public key"):
        await key.public_key_pem()


async def test_plugins_are_loaded_by_entry_point_name(
    kms: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = kms_plugin.install(
        tmp_path / "site",
        kms_plugin.ENTRY_POINT,
        "broken = tests.mgmt.kms_plugin:not_a_key",
        "unreachable = tests.mgmt.kms_plugin:unreachable",
    )
    monkeypatch.syspath_prepend(str(site))
    key = load_plugin("testkms", {"key_file": str(kms / "key.pem")})
    assert key.name == "testkms"
    signature = await key.sign(PAYLOAD)
    assert _verifies(kms, signature)
    assert load_public_key(await key.public_key_pem()).verify(signature, PAYLOAD)
    with pytest.raises(ValueError, match=r"no signer plug-in 'vault' is installed \(.*broken, testkms, unreachable\)"):
        load_plugin("vault", {})
    with pytest.raises(ValueError, match="made a object, which lacks name"):
        load_plugin("broken", {})
    with pytest.raises(ValueError, match="'testkms' .* failed to load: 'key_file'"):
        load_plugin("testkms", {})
    # A plug-in that hangs or fails is bounded and reported like a command.
    unreachable = load_plugin("unreachable", {}, timeout_seconds=0.3)
    started = time.monotonic()
    with pytest.raises(SigningFailed, match="the unreachable plug-in's sign did not answer within 0.3s"):
        await unreachable.sign(PAYLOAD)
    assert time.monotonic() - started < 5
    with pytest.raises(SigningFailed, match="public_key_pem failed: RuntimeError: no region configured"):
        await unreachable.public_key_pem()
