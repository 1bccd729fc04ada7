"""Filling the vulnerability database: from a path, from a URL, and on a schedule.

A path or a downloaded file is read (load.py) off the event loop, then each source found
in it replaces that source's records in one transaction.

A URL is fetched with `If-None-Match` / `If-Modified-Since` from the ETag and
Last-Modified its last import stored; 304 means unchanged (the sources are marked
checked, which keeps them from counting as stale). A URL ending in `modified_id.csv` is
an OSV bucket's ecosystem folder (`…/PyPI/modified_id.csv`, lines `<modified>,<id>`):
the first time, the folder's `all.zip` is imported whole; after that only the records
modified after the newest one stored are fetched (`<folder>/<ID>.json`).
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from portside.meta.vulndb import ImportedSource, SourceRecord, VulnerabilityStore
from portside.scan.vulndb.load import read_path
from portside.scan.vulndb.osv import osv_advisory
from portside.scan.vulndb.records import Advisory, Parsed, parse_time

__all__ = ["ImportOutcome", "due_urls", "import_path", "import_url", "update_from_urls", "update_if_due"]

log = logging.getLogger("portside.scan")

_TIMEOUT = httpx.Timeout(60.0, connect=15.0)
_CONCURRENT_RECORD_FETCHES = 8


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    origin: str
    sources: tuple[SourceRecord, ...]
    unchanged: bool = False
    skipped: tuple[str, ...] = ()  # what was read but not understood

    @property
    def record_count(self) -> int:
        return sum(source.record_count for source in self.sources)


async def _store_parsed(
    store: VulnerabilityStore, parsed: Sequence[Parsed], etag: str | None = None, last_modified: str | None = None
) -> list[SourceRecord]:
    stored = []
    for source in parsed:
        imported = ImportedSource(source.name, source.origin, etag, last_modified)
        stored.append(await store.replace_source(imported, source.advisories))
    return stored


def _skipped(parsed: Sequence[Parsed]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(note for source in parsed for note in source.skipped))


async def import_path(store: VulnerabilityStore, path: Path) -> ImportOutcome:
    """Import what `path` holds (an OSV zip, directory, file, bundle or tar)."""
    parsed = await asyncio.to_thread(read_path, path)
    if not parsed:
        raise ValueError(f"{path}: no advisories found")
    return ImportOutcome(str(path), tuple(await _store_parsed(store, parsed)), skipped=_skipped(parsed))


def _conditions(sources: Sequence[SourceRecord]) -> dict[str, str]:
    headers: dict[str, str] = {}
    etags = {source.etag for source in sources if source.etag}
    stamps = {source.last_modified for source in sources if source.last_modified}
    if len(etags) == 1:
        headers["If-None-Match"] = etags.pop()
    if len(stamps) == 1:
        headers["If-Modified-Since"] = stamps.pop()
    return headers


def _suffix(url: str) -> str:
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    for suffix in (".tar.gz", ".tgz", ".tar", ".zip", ".json"):
        if name.endswith(suffix):
            return suffix
    return ""


async def _download(client: httpx.AsyncClient, url: str, headers: dict[str, str], into: Path) -> httpx.Response:
    async with client.stream("GET", url, headers=headers) as response:
        if response.status_code == 200:
            with into.open("wb") as out:
                async for chunk in response.aiter_bytes():
                    out.write(chunk)
        else:
            await response.aread()
        return response


async def import_url(store: VulnerabilityStore, url: str, client: httpx.AsyncClient | None = None) -> ImportOutcome:
    """Import what `url` serves, unless it says it has not changed since the last import."""
    if urlsplit(url).path.endswith("/modified_id.csv"):
        return await _update_osv_folder(store, url, client)
    own = client or httpx.AsyncClient(timeout=_TIMEOUT, follow_redirects=True)
    try:
        previous = [source for source in await store.sources() if source.origin == url]
        with tempfile.TemporaryDirectory(prefix="portside-vulndb-") as scratch:
            target = Path(scratch) / f"download{_suffix(url)}"
            response = await _download(own, url, _conditions(previous) if previous else {}, target)
            if response.status_code == 304 and previous:
                for source in previous:
                    await store.touch_source(source.name, source.etag, source.last_modified)
                return ImportOutcome(url, tuple(previous), unchanged=True)
            if response.status_code != 200:
                raise ValueError(f"{url}: HTTP {response.status_code}")
            parsed = await asyncio.to_thread(read_path, target, url)
        if not parsed:
            raise ValueError(f"{url}: no advisories found")
        stored = await _store_parsed(store, parsed, response.headers.get("ETag"), response.headers.get("Last-Modified"))
        return ImportOutcome(url, tuple(stored), skipped=_skipped(parsed))
    finally:
        if client is None:
            await own.aclose()


def _modified_ids(text: str, after: datetime | None) -> list[str]:
    """The ids modified after `after` (all of them for None), from `modified_id.csv`."""
    ids = []
    for row in csv.reader(io.StringIO(text)):
        if len(row) < 2:
            continue
        when = parse_time(row[0].strip())
        if when is None:
            continue
        if after is None or when > after:
            ids.append(row[1].strip())
    return list(dict.fromkeys(ids))


async def _update_osv_folder(store: VulnerabilityStore, url: str, client: httpx.AsyncClient | None) -> ImportOutcome:
    folder = url.rsplit("/", 1)[0] + "/"
    ecosystem = unquote(folder.rstrip("/").rsplit("/", 1)[-1])
    name = f"osv:{ecosystem}"
    existing = next((source for source in await store.sources() if source.name == name), None)
    own = client or httpx.AsyncClient(timeout=_TIMEOUT, follow_redirects=True)
    try:
        if existing is None or existing.modified is None:
            whole = await import_url(store, urljoin(folder, "all.zip"), own)
            return ImportOutcome(url, whole.sources, skipped=whole.skipped)
        listing = await own.get(url)
        listing.raise_for_status()
        changed = _modified_ids(listing.text, existing.modified)
        if not changed:
            await store.touch_source(name, existing.etag, existing.last_modified)
            return ImportOutcome(url, (existing,), unchanged=True)
        limit = asyncio.Semaphore(_CONCURRENT_RECORD_FETCHES)

        async def fetch(advisory_id: str) -> Advisory | str | None:
            async with limit:
                response = await own.get(urljoin(folder, f"{advisory_id}.json"))
            if response.status_code == 404:
                return advisory_id  # gone from the folder: drop it here too
            response.raise_for_status()
            return osv_advisory(response.json())

        fetched = await asyncio.gather(*(fetch(advisory_id) for advisory_id in changed))
        advisories = [item for item in fetched if isinstance(item, Advisory)]
        removed = [item for item in fetched if isinstance(item, str)]
        record = await store.update_source(
            ImportedSource(name, existing.origin, existing.etag, existing.last_modified), advisories, removed
        )
        return ImportOutcome(url, (record,))
    finally:
        if client is None:
            await own.aclose()


async def update_from_urls(store: VulnerabilityStore, urls: Sequence[str]) -> list[ImportOutcome]:
    """The scheduled update: every configured URL in turn; one that fails is logged and
    the others still run."""
    outcomes = []
    async with httpx.AsyncClient(timeout=_TIMEOUT, follow_redirects=True) as client:
        for url in urls:
            try:
                outcome = await import_url(store, url, client)
            except (httpx.HTTPError, ValueError, OSError) as error:
                log.warning("vulnerability database update from %s failed: %s", url, error)
                continue
            outcomes.append(outcome)
            log.info(
                "vulnerability database %s: %s",
                url,
                "unchanged" if outcome.unchanged else f"{outcome.record_count} records",
            )
    return outcomes


def _origin_of(url: str) -> str:
    """The origin the sources a URL fills record: an OSV folder's is its `all.zip`."""
    if urlsplit(url).path.endswith("/modified_id.csv"):
        return urljoin(url.rsplit("/", 1)[0] + "/", "all.zip")
    return url


def due_urls(
    sources: Sequence[SourceRecord], urls: Sequence[str], interval_seconds: float, now: datetime | None = None
) -> list[str]:
    """The URLs whose sources were last checked longer than `interval_seconds` ago, or never."""
    when = now or datetime.now(UTC)
    checked: dict[str, datetime] = {}
    for source in sources:
        previous = checked.get(source.origin)
        checked[source.origin] = source.imported_at if previous is None else min(previous, source.imported_at)
    due = []
    for url in urls:
        last = checked.get(_origin_of(url))
        if last is None or (when - last).total_seconds() >= interval_seconds:
            due.append(url)
    return due


async def update_if_due(store: VulnerabilityStore, urls: Sequence[str], interval_seconds: float) -> list[ImportOutcome]:
    """The scheduled update's tick (Settings.vulndb_urls, vulndb_update_interval): update
    from the URLs that are due; nothing when none are (or none are configured: offline)."""
    if not urls:
        return []
    due = due_urls(await store.sources(), urls, interval_seconds)
    return await update_from_urls(store, due) if due else []
