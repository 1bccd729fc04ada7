"""`portside gc` and `portside scrub`: the upkeep jobs, run here on the server's stores.

They run while servers keep serving (GC is online), as recorded jobs like the ones the API
starts, so they show in `/api/v2.0/system/gc` and `/system/scrub` and never overlap one
running elsewhere. The log is printed as it is written.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from portside.config import load_settings
from portside.errors import RegistryError
from portside.extras import MissingExtra
from portside.meta.upkeep import JobRecord

__all__ = ["gc", "scrub"]

ConfigOption = Annotated[Path | None, typer.Option("--config", help="YAML configuration file")]
DataDirOption = Annotated[Path | None, typer.Option("--data-dir", help="data directory")]


def _run(settings_overrides: dict[str, Any], config: Path | None, kind: str, parameters: dict[str, Any]) -> JobRecord:
    from portside.wiring import NoRegistry, operator_upkeep  # loaded when a job runs, not when `serve` does

    settings = load_settings(config, **settings_overrides)

    async def main() -> JobRecord:
        async with operator_upkeep(settings) as upkeep:
            return await upkeep.runner.run(kind, "Manual", parameters, echo=typer.echo)

    try:
        job = asyncio.run(main())
    except RegistryError as error:
        typer.echo(f"error: {error.text}", err=True)
        raise typer.Exit(1) from None
    except (NoRegistry, MissingExtra) as problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1) from None
    if job.status != "Success":
        typer.echo(f"error: {kind} job {job.id} ended {job.status}", err=True)
        raise typer.Exit(1)
    return job


def gc(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report what would be freed; delete nothing")] = False,
    delete_untagged: Annotated[
        bool, typer.Option("--delete-untagged", help="also remove manifests no tag reaches")
    ] = False,
    grace_seconds: Annotated[
        int | None,
        typer.Option("--grace-seconds", min=0, help="spare what is younger than this (default: gc_grace_seconds)"),
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Collect garbage: blobs and (with --delete-untagged) manifests no tag reaches."""
    job = _run(
        {"data_dir": data_dir, "gc_grace_seconds": grace_seconds},
        config,
        "gc",
        {"delete_untagged": delete_untagged, "dry_run": dry_run},
    )
    typer.echo(f"gc job {job.id}: {job.result}")


def scrub(
    quarantine: Annotated[
        bool, typer.Option("--quarantine", help="move corrupted content out of service (kept for inspection)")
    ] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Re-hash every stored blob; report corrupted and missing ones. Exits 2 when it found any."""
    job = _run({"data_dir": data_dir}, config, "scrub", {"quarantine": quarantine})
    typer.echo(f"scrub job {job.id}: {job.result}")
    result = json.loads(job.result or "{}")
    if result.get("corrupted_count") or result.get("missing_count"):
        raise typer.Exit(2)
