"""The keys Portside signs pushed images with (mgmt/server_signing.py), and where they live.

A key is anything with this shape (`SigningKey`):

    name: str                                  # for logs: "portside", "command", a plug-in's
    async def public_key_pem(self) -> str      # SubjectPublicKeyInfo PEM
    async def sign(self, payload: bytes) -> bytes

`sign` returns the signature as cosign carries it: ECDSA is ASN.1 DER over the SHA-256 of
the payload, RSA PKCS #1 v1.5 or PSS with SHA-256, Ed25519 over the payload itself
(trust/keys.py verifies the same). Three kinds exist:

- `portside`: the project's own ECDSA P-256 key, made on first use and kept in the
  registry's key store as `project-signing-<id>` (`ProjectKey`);
- `command`: an external program (a KMS or HSM client, `openssl`) run without a shell for
  each signature: the payload (or its SHA-256, for tools that sign digests) on stdin, the
  signature on stdout (DER, raw r‖s, or DER in base64), bounded in time and size
  (`CommandKey`); Portside never sees the private key;
- `plugin`: an object a site's package makes, found by name in the `portside.signers`
  entry-point group: `factory(options: Mapping[str, str]) -> SigningKey` (`load_plugin`),
  its calls bounded in time like the command's (`PluginKey`).

One of them is the registry's default; a project's `sign_on_push_signer` metadata may pick
another that is configured. Every signature is checked against the key's public half
before it is written, so a command or plug-in that answers garbage leaves the image
unsigned (and says so in the log) instead of writing a signature nothing verifies.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import importlib.metadata
import os
import shutil
import signal
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar, runtime_checkable

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from portside.meta.accounts import Project
from portside.meta.trust import KeyStore
from portside.trust.keys import InvalidKey, PublicKey, load_public_key

__all__ = [
    "ENTRY_POINT_GROUP",
    "KINDS",
    "CommandKey",
    "PluginKey",
    "ProjectKey",
    "SigningFailed",
    "SigningKey",
    "SigningKeys",
    "checked_signature",
    "key_name",
    "load_plugin",
]

ENTRY_POINT_GROUP = "portside.signers"
KINDS = ("portside", "command", "plugin")
SignatureForm = Literal["der", "raw", "base64"]
CommandInput = Literal["payload", "sha256"]

T = TypeVar("T")

_MAX_OUTPUT = 64 << 10  # a signature or a public key PEM is far smaller; more is a broken tool
_STDERR_SHOWN = 300


class SigningFailed(Exception):
    """A key could not sign (or give its public half); the message says why, without secrets."""


@runtime_checkable
class SigningKey(Protocol):
    name: str

    async def public_key_pem(self) -> str: ...

    async def sign(self, payload: bytes) -> bytes: ...


def key_name(project_id: int) -> str:
    return f"project-signing-{project_id}"


class ProjectKey:
    """The project's own key, which Portside makes and keeps."""

    name = "portside"

    def __init__(self, store: KeyStore, project_id: int):
        self._store = store
        self._project_id = project_id

    async def public_key_pem(self) -> str:
        key = await self._private_key()
        return (
            key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    async def sign(self, payload: bytes) -> bytes:
        return (await self._private_key()).sign(payload, ec.ECDSA(hashes.SHA256()))

    async def _private_key(self) -> ec.EllipticCurvePrivateKey:
        candidate = (
            ec.generate_private_key(ec.SECP256R1())
            .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            .decode()
        )
        pem = await self._store.get_or_create(key_name(self._project_id), candidate)
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key


@dataclass
class CommandKey:
    """A key held elsewhere and used through a program: `command` signs, and the public half
    is `public_key` (PEM) or what `public_key_command` prints (run once, then kept: a new key
    behind the same command needs a restart).

    The arguments are a list, never a shell line, and only the program's name is logged:
    arguments may carry a key id or a token. Its environment is Portside's (KMS clients
    read their credentials from it)."""

    command: Sequence[str]
    public_key: str | None = None
    public_key_command: Sequence[str] | None = None
    signature_form: SignatureForm = "der"
    input: CommandInput = "payload"
    timeout_seconds: float = 10.0
    name: str = "command"
    _public: PublicKey | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.command:
            raise ValueError("the signing command is empty")
        if (self.public_key is None) == (self.public_key_command is None):
            raise ValueError("the signing command needs exactly one of a public key PEM and a public key command")
        for argv in (self.command, self.public_key_command or ()):
            if argv and shutil.which(argv[0]) is None:
                raise ValueError(f"the program {argv[0]!r} is not found (an absolute path, or one on PATH)")
        if self.public_key is not None:
            try:
                self._public = _public_key(self.public_key, "the signing command's public key")
            except SigningFailed as error:
                raise ValueError(str(error)) from None

    async def public_key_pem(self) -> str:
        return (await self._public_key()).pem()

    async def sign(self, payload: bytes) -> bytes:
        public = await self._public_key()
        sent = hashlib.sha256(payload).digest() if self.input == "sha256" else payload
        out = await _run(self.command, sent, self.timeout_seconds)
        return _signature(out, self.signature_form, public, self.command[0])

    async def _public_key(self) -> PublicKey:
        if self._public is None:
            assert self.public_key_command is not None
            out = await _run(self.public_key_command, b"", self.timeout_seconds)
            self._public = _public_key(out, f"what {_program(self.public_key_command[0])} printed")
        return self._public


def _public_key(pem: bytes | str, where: str) -> PublicKey:
    try:
        return load_public_key(pem)
    except (InvalidKey, ValueError) as error:
        raise SigningFailed(f"{where} is not a public key: {error}") from None


def _program(path: str) -> str:
    return os.path.basename(path)


def _signature(out: bytes, form: SignatureForm, public: PublicKey, program: str) -> bytes:
    """The command's output as cosign's signature bytes."""
    if form == "base64":
        try:
            return base64.b64decode(b"".join(out.split()), validate=True)
        except (binascii.Error, ValueError):
            raise SigningFailed(f"{_program(program)} printed no base64 signature") from None
    if form == "raw" and isinstance(public.key, ec.EllipticCurvePublicKey):
        # IEEE P1363 r‖s, as PKCS #11 tokens and some KMS APIs give it: two halves of the
        # curve's size, which cosign's DER carries as two INTEGERs.
        size = (public.key.curve.key_size + 7) // 8
        if len(out) != 2 * size:
            raise SigningFailed(f"{_program(program)} printed {len(out)} bytes, not a raw {2 * size}-byte signature")
        return encode_dss_signature(int.from_bytes(out[:size], "big"), int.from_bytes(out[size:], "big"))
    return out


async def _run(argv: Sequence[str], stdin: bytes, timeout: float) -> bytes:
    """`argv`'s stdout for `stdin`, or SigningFailed: it could not start, exited non-zero,
    printed more than 64 KiB, or did not end within `timeout` seconds. It is killed, with
    whatever it started, when it fails so."""
    program = _program(argv[0])
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            # A process group of its own: a timeout ends the helpers a wrapper script started too.
            start_new_session=True,
        )
    except OSError as error:
        raise SigningFailed(f"cannot run {program}: {error.strerror}") from None
    assert process.stdout is not None and process.stderr is not None
    try:
        async with asyncio.timeout(timeout):
            _, (out, overflowed), (err, _) = await asyncio.gather(
                _feed(process, stdin),
                _read(process.stdout, process, keep_tail=False),
                _read(process.stderr, process, keep_tail=True),
            )
            code = await process.wait()
    except TimeoutError:
        raise SigningFailed(f"{program} did not answer within {timeout:g}s") from None
    finally:
        if process.returncode is None:
            _kill(process)
            await process.wait()
    if overflowed:
        raise SigningFailed(f"{program} printed more than {_MAX_OUTPUT} bytes")
    if code != 0:
        said = err.decode(errors="replace").strip()[-_STDERR_SHOWN:]
        raise SigningFailed(f"{program} exited with status {code}" + (f": {said}" if said else ""))
    return out


def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


async def _feed(process: asyncio.subprocess.Process, data: bytes) -> None:
    assert process.stdin is not None
    # A program that does not read its input (a public key command, a broken signer that
    # exits at once) closes the pipe early: what it printed and its exit status then say
    # what happened. uvloop reports a pipe already closed as RuntimeError, asyncio as
    # BrokenPipeError.
    if process.stdin.is_closing():
        return
    with contextlib.suppress(BrokenPipeError, ConnectionResetError, RuntimeError):
        process.stdin.write(data)
        await process.stdin.drain()
        process.stdin.close()
        await process.stdin.wait_closed()


async def _read(
    stream: asyncio.StreamReader, process: asyncio.subprocess.Process, keep_tail: bool
) -> tuple[bytes, bool]:
    """Everything `stream` gives, up to 64 KiB: beyond, stdout kills the program (it is
    broken) and stderr keeps its last 64 KiB (the end says why it failed)."""
    held = b""
    while chunk := await stream.read(_MAX_OUTPUT):
        held += chunk
        if len(held) > _MAX_OUTPUT:
            if not keep_tail:
                _kill(process)
                return b"", True
            held = held[-_MAX_OUTPUT:]
    return held, False


def checked_signature(key: SigningKey, public_pem: str, payload: bytes, signature: bytes) -> bytes:
    """`signature` if `public_pem` verifies it over `payload`, else SigningFailed."""
    if not _public_key(public_pem, f"the {key.name} key's public half").verify(signature, payload):
        raise SigningFailed(f"the {key.name} signer's signature does not verify with its public key")
    return signature


class PluginKey:
    """A plug-in's key as Portside uses it: each call bounded by `timeout_seconds` (a KMS
    that does not answer leaves the image unsigned, not a signing task waiting for ever),
    its errors as SigningFailed, and its public half asked once, then kept: the pull policy
    reads it on every pull of a project it signs for."""

    def __init__(self, key: SigningKey, timeout_seconds: float):
        self.name = str(key.name)
        self._key = key
        self._timeout = timeout_seconds
        self._public: str | None = None

    async def public_key_pem(self) -> str:
        if self._public is None:
            pem = await self._call("public_key_pem", self._key.public_key_pem())
            self._public = _public_key(pem, f"the {self.name} plug-in's public key").pem()
        return self._public

    async def sign(self, payload: bytes) -> bytes:
        return await self._call("sign", self._key.sign(payload))

    async def _call(self, what: str, call: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self._timeout):
                return await call
        except TimeoutError:
            raise SigningFailed(f"the {self.name} plug-in's {what} did not answer within {self._timeout:g}s") from None
        except SigningFailed:
            raise
        except Exception as error:
            raise SigningFailed(f"the {self.name} plug-in's {what} failed: {type(error).__name__}: {error}") from None


def load_plugin(name: str, options: Mapping[str, str], timeout_seconds: float = 10.0) -> PluginKey:
    """The key the `portside.signers` entry point `name` makes from `options`; ValueError
    saying what is wrong (not installed, not loadable, not a signing key)."""
    found = [point for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if point.name == name]
    if not found:
        installed = sorted({point.name for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)})
        raise ValueError(
            f"no signer plug-in {name!r} is installed (entry points of {ENTRY_POINT_GROUP}: "
            + (", ".join(installed) or "none")
            + ")"
        )
    try:
        factory = found[0].load()
        key = factory(dict(options))
    except Exception as error:
        raise ValueError(f"the signer plug-in {name!r} ({found[0].value}) failed to load: {error}") from error
    if not isinstance(key, SigningKey):
        raise ValueError(
            f"the signer plug-in {name!r} made a {type(key).__name__}, which lacks name,"
            " async public_key_pem() or async sign(payload)"
        )
    return PluginKey(key, timeout_seconds)


class SigningKeys:
    """Which key signs a project's pushes: its `sign_on_push_signer` metadata (one of
    `KINDS`), else the registry's default; `site` holds the configured `command` and
    `plugin` keys, which every project choosing them shares."""

    def __init__(self, store: KeyStore, site: Mapping[str, SigningKey] | None = None, default: str = "portside"):
        self._store = store
        self._site = dict(site or {})
        if default != "portside" and default not in self._site:
            raise ValueError(f"the default signer {default!r} is not configured")
        self.default = default

    def kinds(self) -> tuple[str, ...]:
        """The signers a project may pick here: Portside's own key and those configured."""
        return ("portside", *sorted(self._site))

    def for_project(self, project: Project) -> SigningKey:
        """SigningFailed when the project names a kind this registry has not configured."""
        kind = project.metadata.get("sign_on_push_signer") or self.default
        if kind == "portside":
            return ProjectKey(self._store, project.project_id)
        key = self._site.get(kind)
        if key is None:
            raise SigningFailed(f"project {project.name} signs with {kind!r}, which this registry does not configure")
        return key
