"""`portside vulndb`: the vulnerability database of a registry.

`import` reads advisory data from a path (an OSV zip or directory, a Debian tracker or
Alpine secdb file, a bundle, a tar of any of these) or a URL, and replaces the sources it
holds; `oci://<project>/<repo>:<tag>` (or `@<digest>`) imports the database artifact
(scan/vulndb/artifact.py) pushed to this registry, read from its storage. `status` shows
what the database holds and how old it is.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from portside.config import Settings, load_settings
from portside.extras import MissingExtra

if TYPE_CHECKING:
    from portside.meta.vulndb import VulnerabilityStore
    from portside.scan.vulndb.update import ImportOutcome

__all__ = ["vulndb_app"]

vulndb_app = typer.Typer(
    help="The vulnerability database: import advisory data, show its status.", no_args_is_help=True
)

ConfigOption = Annotated[Path | None, typer.Option("--config", help="YAML configuration file")]
DataDirOption = Annotated[Path | None, typer.Option("--data-dir", help="data directory")]


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{int(seconds)}s"
    if seconds < 7200:
        return f"{int(seconds // 60)}m"
    if seconds < 172800:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 86400)}d"


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if moment else "-"


@vulndb_app.command("import")
def import_(
    what: Annotated[
        str,
        typer.Argument(
            metavar="PATH|URL|oci://REF",
            help="a zip, directory, file, bundle, tar, http(s) URL or oci://<project>/<repo>:<tag> artifact",
        ),
    ],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Import advisory data; each source it holds replaces that source's records."""
    import httpx

    from portside.scan.vulndb.update import import_path, import_url
    from portside.wiring import NoRegistry, open_vulnerability_store

    settings = load_settings(config, data_dir=data_dir)
    is_url = what.startswith(("http://", "https://"))

    async def main() -> None:
        async with open_vulnerability_store(settings) as store:
            if what.startswith("oci://"):
                outcome = await _import_artifact(settings, store, what)
            else:
                outcome = await (import_url(store, what) if is_url else import_path(store, Path(what)))
        if outcome.unchanged:
            typer.echo(f"{what}: unchanged since the last import")
            return
        for source in outcome.sources:
            typer.echo(f"{source.name}: {source.record_count} records (generation {source.generation})")
        for note in outcome.skipped:
            typer.echo(f"skipped {note}", err=True)

    try:
        asyncio.run(main())
    except (NoRegistry, MissingExtra, ValueError, FileNotFoundError, httpx.HTTPError) as problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1) from None


async def _import_artifact(settings: Settings, store: VulnerabilityStore, what: str) -> ImportOutcome:
    from portside.scan.vulndb.artifact import import_artifact, parse_artifact_reference
    from portside.wiring import open_registry_reads

    where = parse_artifact_reference(what)
    async with open_registry_reads(settings) as (manifests, blobs):
        return await import_artifact(store, manifests, blobs, where)


@vulndb_app.command()
def export(
    bundle: Annotated[Path, typer.Argument(help="a bundle directory (with bundle.json), or a .tar/.tar.gz of one")],
    oci: Annotated[Path, typer.Option("--oci", help="the OCI image layout directory to write")],
    tag: Annotated[str, typer.Option("--tag", help="the tag the layout names the artifact by")] = "latest",
) -> None:
    """Make the database artifact (application/vnd.portside.vulndb.v1) of a bundle, as an OCI
    image layout to carry across and push with `oras cp --from-oci-layout DIR:TAG REF`."""
    from portside.scan.vulndb.artifact import write_oci_layout

    try:
        digest = write_oci_layout(bundle, oci, tag)
    except (ValueError, OSError) as problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{oci}:{tag} {digest}")


@vulndb_app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """What the database holds: per source, its records, when imported, its newest record, its age."""
    from portside.scan.vulndb.status import database_status
    from portside.wiring import NoRegistry, open_vulnerability_store

    settings = load_settings(config, data_dir=data_dir)

    async def main() -> None:
        async with open_vulnerability_store(settings) as store:
            report = await database_status(store, settings.vulndb_max_age)
        if as_json:
            typer.echo(json.dumps(report.as_json(), indent=2))
            return
        rows = [("SOURCE", "RECORDS", "IMPORTED", "NEWEST RECORD", "AGE")]
        rows += [
            (
                s.name,
                str(s.record_count),
                _when(s.imported_at),
                _when(s.newest_record),
                _age(s.age_seconds) + (" stale" if s.stale else ""),
            )
            for s in report.sources
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        for row in rows:
            typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if not report.sources:
            typer.echo("the vulnerability database is empty: import data with `portside vulndb import PATH|URL`")
        elif report.stale:
            typer.echo(
                f"warning: the database is stale (a source is older than {_age(report.max_age_seconds)})", err=True
            )

    try:
        asyncio.run(main())
    except (NoRegistry, MissingExtra) as problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1) from None
