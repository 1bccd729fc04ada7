"""`portside key generate`, `portside sign` and `portside verify`: cosign's key-pair signatures.

Keys are cosign's (`cosign.key`, encrypted with the password in `COSIGN_PASSWORD` or
asked for; `cosign.pub`), and signatures are stored as cosign stores them, under the tag
`sha256-<hex>.sig` beside the image, so `cosign verify --key cosign.pub` accepts what
`portside sign` writes and the other way round. `portside sign --bundle` writes instead what
`cosign sign --new-bundle-format` does: a sigstore bundle v0.3 as an OCI 1.1 referrer of
the image (`portside.trust.bundle_signing`; on a registry without the referrers API, listed
under the fallback tag `sha256-<hex>`, `portside.remote.referrers`). `portside verify`
checks both kinds and says which verified.

IMAGE is `host[:port]/repository:tag` or `…@sha256:<hex>`; 127.0.0.1 and localhost are
spoken to over plain http, every other host over https. Registry credentials come from
`--username` with `--password-stdin`, else from docker's `config.json` (`$DOCKER_CONFIG`,
default `~/.docker`), `auths[host].auth`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from portside.remote.client import RemoteRegistry
    from portside.trust.keys import PublicKey
    from portside.trust.results import Verification

__all__ = ["key_app", "sign", "verify", "login", "ImageRef", "parse_image", "docker_config_path"]

key_app = typer.Typer(help="cosign key pairs.", no_args_is_help=True)

UsernameOption = Annotated[str | None, typer.Option("--username", "-u", help="registry user name")]
PasswordStdinOption = Annotated[
    bool, typer.Option("--password-stdin", help="read the registry password from standard input")
]
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"portside: {message}", err=True)
    return typer.Exit(code)


@dataclass(frozen=True, slots=True)
class ImageRef:
    host: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def base_url(self) -> str:
        name = self.host.rsplit(":", 1)[0] if not self.host.startswith("[") else self.host.split("]")[0] + "]"
        scheme = "http" if name in _LOCAL_HOSTS else "https"
        return f"{scheme}://{self.host}"

    @property
    def reference(self) -> str:
        return self.digest or self.tag or "latest"


def parse_image(text: str) -> ImageRef:
    """`host[:port]/repo[:tag]` or `host[:port]/repo@sha256:…`; ValueError otherwise."""
    rest, _, digest = text.partition("@")
    host, slash, path = rest.partition("/")
    if not slash or not path or not ("." in host or ":" in host or host == "localhost"):
        raise ValueError(f"{text!r} names no registry host: write host[:port]/repository:tag")
    tag: str | None = None
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, _, tag = path.rpartition(":")
    if digest and not digest.startswith("sha256:"):
        raise ValueError(f"{text!r}: only sha256 digests are accepted")
    if not digest and not tag:
        tag = "latest"
    return ImageRef(host=host, repository=path, tag=tag or None, digest=digest or None)


def docker_config_path() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"


def _docker_auth(host: str) -> str | None:
    path = docker_config_path()
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    auths = config.get("auths") if isinstance(config, dict) else None
    if not isinstance(auths, dict):
        return None
    for name in (host, f"https://{host}", f"http://{host}", f"https://{host}/v2/", f"http://{host}/v2/"):
        entry = auths.get(name)
        if isinstance(entry, dict) and isinstance(entry.get("auth"), str) and entry["auth"]:
            return f"Basic {entry['auth']}"
    return None


def _authorization(host: str, username: str | None, password_stdin: bool) -> str | None:
    if password_stdin and not username:
        raise _fail("--password-stdin needs --username", 2)
    if username:
        password = sys.stdin.read().rstrip("\r\n") if password_stdin else typer.prompt("Password", hide_input=True)
        return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    return _docker_auth(host)


def _key_password(confirm: bool) -> str:
    if "COSIGN_PASSWORD" in os.environ:
        return os.environ["COSIGN_PASSWORD"]
    return str(typer.prompt("Enter password for private key", hide_input=True, confirmation_prompt=confirm))


@key_app.command("generate")
def generate() -> None:
    """Write a new key pair to cosign.key (encrypted) and cosign.pub in the current directory."""
    from portside.trust import signing

    private, public = Path("cosign.key"), Path("cosign.pub")
    for path in (private, public):
        if path.exists():
            raise _fail(f"{path} exists; not overwriting it")
    password = _key_password(confirm=True)
    key = signing.generate_key()
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(signing.encrypt_private_key(key, password))
    public.write_bytes(signing.public_key_pem(key))
    typer.echo("Private key written to cosign.key\nPublic key written to cosign.pub")


def _image(image: str) -> ImageRef:
    try:
        return parse_image(image)
    except ValueError as error:
        raise _fail(str(error), 2) from None


async def _resolve(remote: RemoteRegistry, ref: ImageRef) -> str:
    return await remote.resolve(ref.repository, ref.reference)


async def _read_blob(remote: RemoteRegistry, repository: str, digest: str) -> bytes:
    return b"".join([chunk async for chunk in remote.blob(repository, digest)])


async def _sign(ref: ImageRef, authorization: str | None, private_key: Any) -> tuple[str, str]:
    from portside.remote.client import RemoteRegistry
    from portside.remote.errors import RemoteNotFound
    from portside.trust import signing
    from portside.trust.cosign import signature_tag

    async with RemoteRegistry(ref.base_url, authorization) as remote:
        digest = await _resolve(remote, ref)
        payload = signing.simple_signing_payload(f"{ref.host}/{ref.repository}", digest)
        signature = signing.sign(private_key, payload)
        payload_digest = await remote.push_blob(ref.repository, payload)
        tag = signature_tag(digest)
        try:
            existing: bytes | None = (await remote.manifest_by_tag(ref.repository, tag)).body
        except RemoteNotFound:
            existing = None
        manifest = signing.signature_manifest(existing, payload_digest, len(payload), signature)
        layers = [layer["digest"] for layer in json.loads(manifest)["layers"]]
        await remote.push_blob(ref.repository, signing.signature_config(layers))
        await remote.put_manifest(ref.repository, tag, manifest, signing.OCI_MANIFEST)
        return digest, f"the signature is at {ref.repository}:{tag}"


async def _sign_bundle(ref: ImageRef, authorization: str | None, private_key: Any) -> tuple[str, str]:
    from portside.remote import referrers
    from portside.remote.client import RemoteRegistry
    from portside.trust import bundle_signing

    async with RemoteRegistry(ref.base_url, authorization) as remote:
        subject = await remote.describe(ref.repository, ref.reference)
        bundle = bundle_signing.sign_bundle(private_key, subject.digest)
        await remote.push_blob(ref.repository, bundle_signing.EMPTY_CONFIG)
        await remote.push_blob(ref.repository, bundle)
        attached = await referrers.push(
            remote, ref.repository, bundle_signing.referrer_manifest(bundle, subject.to_json())
        )
        where = f"the bundle is the referrer {ref.repository}@{attached.digest}"
        if attached.fallback_tag is not None:
            where += f", listed under {ref.repository}:{attached.fallback_tag} (the registry has no referrers API)"
        return subject.digest, where


def sign(
    image: Annotated[str, typer.Argument(help="host[:port]/repository:tag or …@sha256:…")],
    key: Annotated[Path, typer.Option("--key", help="cosign's encrypted private key")] = Path("cosign.key"),
    bundle: Annotated[
        bool,
        typer.Option(
            "--bundle",
            help="write a sigstore bundle v0.3 as an OCI 1.1 referrer (as cosign's --new-bundle-format) "
            "instead of the sha256-<hex>.sig tag; offline: nothing is sent to Rekor, so the bundle has "
            "no transparency-log entry (verify with cosign's --insecure-ignore-tlog)",
        ),
    ] = False,
    username: UsernameOption = None,
    password_stdin: PasswordStdinOption = False,
) -> None:
    """Sign an image (or index) with a cosign key and push the signature beside it: under
    the sha256-<hex>.sig tag, or with --bundle as a sigstore bundle referrer (offline, no
    transparency-log entry)."""
    from portside.remote.errors import RemoteError
    from portside.trust import signing

    ref = _image(image)
    try:
        key_bytes = key.read_bytes()
    except OSError as error:
        raise _fail(f"cannot read {key}: {error.strerror}") from None
    authorization = _authorization(ref.host, username, password_stdin)
    try:
        private_key = signing.decrypt_private_key(key_bytes, _key_password(confirm=False))
    except ValueError as error:
        raise _fail(str(error)) from None
    try:
        digest, where = asyncio.run((_sign_bundle if bundle else _sign)(ref, authorization, private_key))
    except RemoteError as error:
        raise _fail(str(error)) from None
    typer.echo(f"Signed {ref.host}/{ref.repository}@{digest}; {where}")


_MAX_BUNDLE = 1 << 20  # as the registry's own policy reads at most


async def _bundle_verdicts(
    remote: RemoteRegistry, repository: str, digest: str, key: PublicKey
) -> list[tuple[str, Verification]]:
    """The sigstore bundle referrers of `digest`, each checked with `key`; a listed referrer
    that is gone or no manifest is passed over, a missing bundle blob is its verdict."""
    from portside.oci.mediatypes import OCI_EMPTY
    from portside.remote import referrers
    from portside.remote.errors import RemoteNotFound
    from portside.trust import bundle

    verdicts: list[tuple[str, Verification]] = []
    for descriptor in await referrers.listed(remote, repository, digest, bundle.MEDIA_TYPE):
        # cosign lists its bundles under the fallback tag with the empty config's type:
        # those are read too, and the manifest's own artifactType decides.
        if descriptor.get("artifactType") not in (bundle.MEDIA_TYPE, OCI_EMPTY):
            continue
        try:
            found = await remote.manifest(repository, str(descriptor["digest"]))
            manifest = json.loads(found.body)
        except (RemoteNotFound, ValueError):
            continue
        if not isinstance(manifest, dict) or manifest.get("artifactType") != bundle.MEDIA_TYPE:
            continue
        blobs: dict[str, bytes] = {}
        for layer in manifest.get("layers") or []:
            if not isinstance(layer, dict) or layer.get("mediaType") not in bundle.MEDIA_TYPES:
                continue
            size = layer.get("size")
            if isinstance(size, int) and 0 <= size <= _MAX_BUNDLE:
                try:
                    blobs[str(layer["digest"])] = await _read_blob(remote, repository, str(layer["digest"]))
                except RemoteNotFound:
                    pass
        label = f"sigstore bundle, referrer {found.digest}"
        verdicts.append((label, bundle.verify_referrer(manifest, blobs.get, digest, [key])))
    return verdicts


async def _verify(
    ref: ImageRef, authorization: str | None, public_key: PublicKey
) -> tuple[str, list[tuple[str, Verification]]]:
    from portside.remote.client import RemoteRegistry
    from portside.remote.errors import RemoteNotFound
    from portside.trust import cosign

    async with RemoteRegistry(ref.base_url, authorization) as remote:
        digest = await _resolve(remote, ref)
        verdicts: list[tuple[str, Verification]] = []
        tag = cosign.signature_tag(digest)
        try:
            found = await remote.manifest_by_tag(ref.repository, tag)
        except RemoteNotFound:
            pass
        else:
            manifest = json.loads(found.body)
            blobs: dict[str, bytes | None] = {}
            for layer in cosign.signature_layers(manifest):
                blobs[layer.digest] = await _read_blob(remote, ref.repository, layer.digest)
            for verdict in cosign.verify_manifest(manifest, blobs.get, digest, [public_key]):
                verdicts.append((f"cosign signature, tag {tag}", verdict))
        verdicts += await _bundle_verdicts(remote, ref.repository, digest, public_key)
        return digest, verdicts


def verify(
    image: Annotated[str, typer.Argument(help="host[:port]/repository:tag or …@sha256:…")],
    key: Annotated[Path, typer.Option("--key", help="the public key (cosign.pub)")] = Path("cosign.pub"),
    username: UsernameOption = None,
    password_stdin: PasswordStdinOption = False,
) -> None:
    """Check an image's cosign signatures (the sha256-<hex>.sig tag, and sigstore bundle
    referrers found by the referrers API or its fallback tag) with a public key: each is
    listed with its kind; exit 0 only if one verifies. Bundles are checked offline: a
    Rekor entry they carry is not required."""
    from portside.remote.errors import RemoteError
    from portside.trust.keys import load_public_key

    ref = _image(image)
    try:
        public_key = load_public_key(key.read_bytes())
    except OSError as error:
        raise _fail(f"cannot read {key}: {error.strerror}") from None
    except ValueError as error:
        raise _fail(f"{key}: {error}") from None
    authorization = _authorization(ref.host, username, password_stdin)
    try:
        digest, verdicts = asyncio.run(_verify(ref, authorization, public_key))
    except RemoteError as error:
        raise _fail(str(error)) from None
    if not verdicts:
        raise _fail(f"no signatures found for {image}")
    for number, (label, verdict) in enumerate(verdicts, 1):
        state = "verified" if verdict.verified else f"not verified: {verdict.reason}"
        typer.echo(f"signature {number} of {ref.repository}@{digest} ({label}): {state}")
    if not any(verdict.verified for _, verdict in verdicts):
        raise _fail(f"no signature of {image} verifies with {key}")


def login(
    registry: Annotated[str, typer.Argument(help="host[:port]")],
    username: Annotated[str, typer.Option("--username", "-u", help="registry user name")],
    password_stdin: PasswordStdinOption = False,
) -> None:
    """Check credentials against the registry's /v2/ and store them in docker's config.json."""
    from portside.remote.client import RemoteRegistry
    from portside.remote.errors import RemoteError

    host = registry.removeprefix("https://").removeprefix("http://").rstrip("/")
    password = sys.stdin.read().rstrip("\r\n") if password_stdin else typer.prompt("Password", hide_input=True)
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    ref = ImageRef(host=host, repository="", tag=None, digest=None)

    async def check() -> None:
        async with RemoteRegistry(ref.base_url, f"Basic {auth}") as remote:
            await remote.check()

    try:
        asyncio.run(check())
    except RemoteError as error:
        raise _fail(f"login to {host} failed: {error}") from None
    path = docker_config_path()
    try:
        config: Any = json.loads(path.read_text())
    except FileNotFoundError:
        config = {}
    except (OSError, ValueError) as error:
        raise _fail(f"cannot read {path}: {error}") from None
    if not isinstance(config, dict):
        raise _fail(f"{path} is not a JSON object")
    auths = config.setdefault("auths", {})
    auths[host] = {**(auths.get(host) or {}), "auth": auth}
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(config, out, indent="\t")
    typer.echo("Login Succeeded")
