"""`portside copy SRC DST` and `portside sync SRC DST`: registry to registry, with the copy
engine replication uses (`portside.remote.copy`).

Images are `[docker://]host[:port]/repository[:tag|@sha256:…]`. Credentials for each side
come from `--src-creds` / `--dest-creds` (`USER:PASSWORD`), for the destination also from
`--username` with `--password-stdin`, else from docker's `config.json` as `portside login`
and `docker login` write it.

Progress is drawn with `rich` on a terminal (each blob and the whole, rate, time left), one
line per item otherwise, and `--json` prints one JSON document at the end for scripts.

Exit codes: 0 copied (or nothing to do), 1 the copy failed (a registry unreachable, an
unexpected answer, a digest that did not match), 2 the command line is wrong, 3 a registry
refused the credentials, 4 the source does not exist.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import platform
import sys
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from portside.cli.sign import PasswordStdinOption, UsernameOption, _authorization, parse_image

if TYPE_CHECKING:
    from portside.remote.copy import CopyOptions, ProgressListener
    from portside.remote.endpoints import Target

__all__ = ["copy", "sync", "EXIT_FAILED", "EXIT_USAGE", "EXIT_UNAUTHORIZED", "EXIT_NOT_FOUND"]

EXIT_FAILED, EXIT_USAGE, EXIT_UNAUTHORIZED, EXIT_NOT_FOUND = 1, 2, 3, 4

AllOption = Annotated[bool, typer.Option("--all", "-a", help="an index with every platform, unchanged")]
PlatformOption = Annotated[
    str | None,
    typer.Option(
        "--platform", help="os/arch or os/arch/variant, comma-separated: only these images of an index, in a new index"
    ),
]
ReferrersOption = Annotated[bool, typer.Option("--referrers", help="signatures, SBOMs and other referrers too")]
AllTagsOption = Annotated[bool, typer.Option("--all-tags", help="every source tag naming the same digest")]
SpeedOption = Annotated[int | None, typer.Option("--speed", help="at most this many KB/s", min=1)]
JobsOption = Annotated[int, typer.Option("--jobs", "-j", help="blobs copied at the same time", min=1)]
JsonOption = Annotated[bool, typer.Option("--json", help="one JSON document on standard output")]
SrcCredsOption = Annotated[str | None, typer.Option("--src-creds", help="USER:PASSWORD for the source")]
DestCredsOption = Annotated[str | None, typer.Option("--dest-creds", help="USER:PASSWORD for the destination")]
JournalOption = Annotated[
    Path | None,
    typer.Option(
        "--resume-file",
        help="where open uploads are noted, for a copy run again to resume them "
        "(default $XDG_STATE_HOME/portside/uploads.json, else ~/.local/state/portside/uploads.json)",
    ),
]
TlsVerifyOption = Annotated[
    bool,
    typer.Option("--tls-verify/--no-tls-verify", help="check the registries' TLS certificates (https hosts)"),
]
ChunkOption = Annotated[int, typer.Option("--chunk-size", help="bytes per upload chunk", min=1, hidden=True)]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Side:
    host: str
    repository: str
    reference: str | None  # a tag or digest; None for a repository (sync)
    base_url: str
    layout: Path | None = None  # an OCI layout directory rather than a registry

    def authorization(self, username: str | None = None, password_stdin: bool = False) -> str | None:
        return None if self.layout is not None else _authorization(self.host, username, password_stdin)

    def where(self) -> str:
        return f"oci:{self.layout}" if self.layout is not None else f"{self.host}/{self.repository}"


def _fail(message: str, code: int, as_json: bool) -> typer.Exit:
    if as_json:
        typer.echo(json.dumps({"error": message, "exit_code": code}))
    else:
        typer.echo(f"portside: {message}", err=True)
    return typer.Exit(code)


def _layout_side(text: str) -> _Side:
    """`oci:DIR`, `oci:DIR:tag` or `oci:DIR@sha256:…`."""
    rest = text.removeprefix("oci:")
    reference: str | None = None
    if "@" in rest:
        rest, _, reference = rest.rpartition("@")
    elif ":" in rest and "/" not in rest.rsplit(":", 1)[1]:
        rest, _, reference = rest.rpartition(":")
    if not rest:
        raise ValueError(f"{text!r} names no directory: write oci:DIR[:tag]")
    return _Side("", Path(rest).name, reference or None, "", Path(rest))


def _side(text: str, *, image: bool, as_json: bool) -> _Side:
    text = text.removeprefix("docker://")
    try:
        if text.startswith("oci:"):
            return _layout_side(text)
        if image:
            ref = parse_image(text)
            # Only what was written: a name without a tag has none (the source's is taken).
            written = ref.digest or (ref.tag if ":" in text.rsplit("/", 1)[-1] else None)
            return _Side(ref.host, ref.repository, written, ref.base_url)
        ref = parse_image(text.rstrip("/") + ":latest")  # the host and scheme rules of images
        return _Side(ref.host, ref.repository, None, ref.base_url)
    except ValueError as error:
        raise _fail(str(error), EXIT_USAGE, as_json) from None


def _creds(creds: str | None) -> str | None:
    if creds is None:
        return None
    if ":" not in creds:
        raise _fail("credentials are USER:PASSWORD", EXIT_USAGE, False)
    return "Basic " + base64.b64encode(creds.encode()).decode()


def _platforms(value: str | None, as_json: bool) -> tuple[str, ...] | None:
    if value is None:
        return None
    found = tuple(part.strip() for part in value.split(",") if part.strip())
    if not found or any(len(part.split("/")) not in (2, 3) for part in found):
        raise _fail(f"--platform {value!r}: write os/arch[/variant][,…]", EXIT_USAGE, as_json)
    return found


def _journal(path: Path | None) -> Any:
    from portside.remote.journal import FileJournal

    if path is None:
        state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        path = Path(state) / "portside" / "uploads.json"
    return FileJournal(path)


def host_platform() -> str:
    """linux/<this machine's architecture>, in OCI's words."""
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)
    return f"linux/{arch}"


def _listener(as_json: bool) -> tuple[ProgressListener, Callable[[], None]]:
    from portside.cli.progress import LineProgress, RichProgress

    if as_json:
        from portside.remote.copy import ProgressListener

        return ProgressListener(), lambda: None
    if sys.stderr.isatty():
        rich = RichProgress()
        return rich, rich.stop
    return LineProgress(), lambda: None


def _run(work: Callable[[], Coroutine[Any, Any, T]], as_json: bool) -> T:
    from portside.remote.errors import RemoteError, RemoteNotFound, RemoteUnauthorized

    try:
        return asyncio.run(work())
    except RemoteUnauthorized as error:
        raise _fail(str(error), EXIT_UNAUTHORIZED, as_json) from None
    except RemoteNotFound as error:
        raise _fail(str(error), EXIT_NOT_FOUND, as_json) from None
    except RemoteError as error:
        raise _fail(str(error), EXIT_FAILED, as_json) from None


def _options(
    all_tags: bool, platforms: tuple[str, ...] | None, referrers: bool, speed: int | None, jobs: int, chunk: int
) -> CopyOptions:
    from portside.remote.copy import CopyOptions

    return CopyOptions(
        all_tags=all_tags, platforms=platforms, referrers=referrers, speed=speed, jobs=jobs, chunk_size=chunk
    )


async def _endpoint(side: _Side, authorization: str | None, stack: AsyncExitStack, tls_verify: bool) -> Target:
    """The registry (closed with `stack`) or the OCI layout a side names."""
    from portside.remote.client import RemoteRegistry
    from portside.remote.endpoints import RegistryEndpoint
    from portside.remote.layout import LayoutEndpoint

    if side.layout is not None:
        return LayoutEndpoint(side.layout)
    registry = await stack.enter_async_context(
        RemoteRegistry(side.base_url, authorization, timeout=120.0, verify=tls_verify)
    )
    return RegistryEndpoint(registry)


def copy(
    source: Annotated[
        str, typer.Argument(help="host:port/repository:tag or …@sha256:… (docker:// optional), or oci:DIR:tag")
    ],
    destination: Annotated[
        str, typer.Argument(help="host:port/repository, or …:tag (docker:// optional), or oci:DIR:tag")
    ],
    all_platforms: AllOption = False,
    platform_filter: PlatformOption = None,
    referrers: ReferrersOption = False,
    all_tags: AllTagsOption = False,
    speed: SpeedOption = None,
    jobs: JobsOption = 4,
    as_json: JsonOption = False,
    src_creds: SrcCredsOption = None,
    dest_creds: DestCredsOption = None,
    username: UsernameOption = None,
    password_stdin: PasswordStdinOption = False,
    resume_file: JournalOption = None,
    tls_verify: TlsVerifyOption = True,
    chunk_size: ChunkOption = 8 << 20,
) -> None:
    """Copy an image or index between registries and OCI layout directories (without --all
    or --platform, an index gives the image of this machine's platform)."""
    src = _side(source, image=True, as_json=as_json)
    dst = _side(destination, image=True, as_json=as_json)
    if all_platforms and platform_filter:
        raise _fail("--all and --platform exclude each other", EXIT_USAGE, as_json)
    platforms = _platforms(platform_filter, as_json)
    src_auth = _creds(src_creds) or src.authorization()
    dst_auth = _creds(dest_creds) or dst.authorization(username, password_stdin)
    # A destination named without a tag takes the source's tag (none for a digest; an OCI
    # layout, which finds images only by tag, then takes `latest`).
    explicit_tag = dst.reference if dst.reference and ":" not in dst.reference else None
    listener, stop = _listener(as_json)

    async def work() -> dict[str, Any]:
        from portside.remote.copy import Copier, platform_child

        async with AsyncExitStack() as stack:
            source_end = await _endpoint(src, src_auth, stack, tls_verify)
            target_end = await _endpoint(dst, dst_auth, stack, tls_verify)
            options = _options(all_tags, platforms, referrers, speed, jobs, chunk_size)
            copier = Copier(source_end, target_end, options, listener, _journal(resume_file))
            reference = src.reference or "latest"
            digest = reference if ":" in reference else await source_end.resolve(src.repository, reference)
            if not all_platforms and platforms is None:
                child = await platform_child(source_end, src.repository, digest, host_platform())
                digest = child or digest
            tag = explicit_tag or (None if ":" in reference else reference)
            if tag is None and dst.layout is not None:
                tag = "latest"
            report = await copier.copy(src.repository, digest, dst.repository, tags=[tag] if tag else [])
            return report.as_dict()

    try:
        result = _run(work, as_json)
    finally:
        stop()
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    blobs = result["blobs"]
    typer.echo(
        f"copied {dst.where()}@{result['destination_digest']}"
        + (f" (a new index of {platform_filter}; the source's is {result['digest']})" if result["filtered"] else "")
        + f"; tags: {', '.join(result['tags']) or 'none'}; blobs: {blobs['copied']} copied, "
        f"{blobs['mounted']} mounted, {blobs['present']} already there; {len(result['referrers'])} referrers",
        err=True,
    )


def sync(
    source: Annotated[
        str, typer.Argument(help="host:port/repository, or host:port/namespace/ for all its repositories")
    ],
    destination: Annotated[str, typer.Argument(help="host:port/repository or namespace")],
    platform_filter: PlatformOption = None,
    referrers: ReferrersOption = False,
    speed: SpeedOption = None,
    jobs: JobsOption = 4,
    as_json: JsonOption = False,
    src_creds: SrcCredsOption = None,
    dest_creds: DestCredsOption = None,
    username: UsernameOption = None,
    password_stdin: PasswordStdinOption = False,
    resume_file: JournalOption = None,
    tls_verify: TlsVerifyOption = True,
    chunk_size: ChunkOption = 8 << 20,
) -> None:
    """Copy the tags of a repository (or of every repository under a namespace, SRC ending
    in `/`) whose digest differs at the destination, with every platform of an index."""
    namespace = source.endswith("/")
    src = _side(source, image=False, as_json=as_json)
    dst = _side(destination, image=False, as_json=as_json)
    if namespace and (src.layout is not None or dst.layout is not None):
        raise _fail("an OCI layout holds one repository: name it without a trailing /", EXIT_USAGE, as_json)
    platforms = _platforms(platform_filter, as_json)
    src_auth = _creds(src_creds) or src.authorization()
    dst_auth = _creds(dest_creds) or dst.authorization(username, password_stdin)
    listener, stop = _listener(as_json)

    async def work() -> list[dict[str, Any]]:
        from portside.remote.copy import Copier, sync_repository
        from portside.remote.endpoints import RegistryEndpoint
        from portside.remote.transfer import catalog

        async with AsyncExitStack() as stack:
            source_end = await _endpoint(src, src_auth, stack, tls_verify)
            target_end = await _endpoint(dst, dst_auth, stack, tls_verify)
            options = _options(False, platforms, referrers, speed, jobs, chunk_size)
            copier = Copier(source_end, target_end, options, listener, _journal(resume_file))
            pairs = [(src.repository, dst.repository)]
            if namespace and isinstance(source_end, RegistryEndpoint):
                prefix = src.repository + "/"
                names = [name for name in await catalog(source_end.registry) if name.startswith(prefix)]
                pairs = [(name, f"{dst.repository}/{name.removeprefix(prefix)}") for name in sorted(names)]
            return [(await sync_repository(copier, s, d)).as_dict() for s, d in pairs]

    try:
        results = _run(work, as_json)
    finally:
        stop()
    if as_json:
        typer.echo(json.dumps({"repositories": results}, indent=2))
        return
    for result in results:
        tags = [tag for copy in result["copied"] for tag in copy["tags"]]
        typer.echo(
            f"synced {result['source_repository']} → {result['destination_repository']}: "
            f"{len(tags)} tags copied ({', '.join(tags) or 'none'}), {len(result['unchanged'])} unchanged",
            err=True,
        )
