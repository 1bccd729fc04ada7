"""The composition root: settings → stores → services → ASGI app.

The only module that names concrete implementations (`storage.fs`, `meta.sql`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

import portside
from portside.auth.access import OpenRegistry
from portside.auth.authn import Authenticator
from portside.auth.controller import AccessController
from portside.auth.policy import Policy
from portside.auth.tokens import (
    ForeignService,
    TokenService,
    derived_secret,
    load_or_create_key,
    write_token_certificate,
)
from portside.config import Settings, received_settings
from portside.coord.coordinator import Coordinator, LocalCoordinator
from portside.coord.counters import Generation
from portside.coord.locks import Locks
from portside.errors import Conflict, ManifestUnknown
from portside.extras import require_extras
from portside.http.accel import NginxBlobLocation
from portside.http.adapter import adapter_routes
from portside.http.api.app import management_routes
from portside.http.api.services import ManagementServices
from portside.http.app import build_app
from portside.http.filerange import SliceSlots
from portside.http.services import Services
from portside.meta.registries import Endpoint
from portside.meta.sql.accounts import SqlAccounts
from portside.meta.sql.allowlists import SqlAllowlists
from portside.meta.sql.artifacts import SqlArtifacts
from portside.meta.sql.cve_exports import SqlExportFiles
from portside.meta.sql.engine import create_engine
from portside.meta.sql.events import SqlEvents
from portside.meta.sql.failover import SqlFailover
from portside.meta.sql.gc import SqlUpkeep
from portside.meta.sql.jobs import SqlJobs
from portside.meta.sql.keys import SqlKeys
from portside.meta.sql.preheat import SqlPreheat
from portside.meta.sql.quotas import SqlQuotas, UsageCache
from portside.meta.sql.registries import SqlEndpoints
from portside.meta.sql.replication import SqlReplication
from portside.meta.sql.scans import SqlScans
from portside.meta.sql.search import SqlSearch
from portside.meta.sql.sessions import SqlSessions
from portside.meta.sql.store import SqlDatabase
from portside.meta.sql.trust import SqlTrust
from portside.meta.stores import ChangeCounter
from portside.meta.trust import KeyStore
from portside.meta.vulndb import SourceRecord
from portside.mgmt.artifacts import ArtifactService, RepositoryService
from portside.mgmt.audit import AuditService, purge_expired
from portside.mgmt.content_trust import ContentTrust
from portside.mgmt.cve_allowlist import CveAllowlistService
from portside.mgmt.cve_export import EXPORT_FAMILY, CveExportService
from portside.mgmt.external_scans import ExternalScans
from portside.mgmt.guard import Guard
from portside.mgmt.members import MemberService
from portside.mgmt.p2p_instances import InstanceService
from portside.mgmt.permissions import PermissionService
from portside.mgmt.preheat import PreheatService, PullTokens
from portside.mgmt.projects import ProjectService
from portside.mgmt.pull_policy import PullPolicy
from portside.mgmt.quotas import QuotaService
from portside.mgmt.registries import RegistryService
from portside.mgmt.registry_failover import FailoverService
from portside.mgmt.replication import ReplicationService
from portside.mgmt.replication_runs import ReplicationWorker, Retries, Sides
from portside.mgmt.robots import RobotService
from portside.mgmt.scanners import ScannerRegistry, builtin_view
from portside.mgmt.scanning import BUILTIN_SCANNER, ScanApiService
from portside.mgmt.search import SearchService
from portside.mgmt.server_signing import ServerSigner
from portside.mgmt.sessions import SessionService
from portside.mgmt.signatures import SignatureService
from portside.mgmt.signing_keys import SigningKeys
from portside.mgmt.statistics import StatisticsService
from portside.mgmt.system import SystemJobService
from portside.mgmt.systeminfo import SystemFacts, SystemInfoService, Volume
from portside.mgmt.totp import TotpService
from portside.mgmt.trust_policy import TrustPolicyService
from portside.mgmt.users import UserService
from portside.oci.manifest import Manifest
from portside.proxy.cache import PullThroughCache
from portside.proxy.projects import ProxyProjects
from portside.registry.blobs import BlobService
from portside.registry.cache import BlobSizeCache, ManifestCache
from portside.registry.catalog import CatalogService
from portside.registry.configs import ImageConfigs
from portside.registry.copy import ArtifactCopier
from portside.registry.manifests import ManifestService
from portside.registry.trail import AuditTrail
from portside.registry.uploadids import UploadIds
from portside.registry.uploads import UploadService
from portside.remote.adapters import default_adapters
from portside.remote.notary import NotaryClient
from portside.remote.p2p import default_drivers
from portside.scan.adapter.server import AdapterServer
from portside.scan.adapter.wire import ScannerInfo as AdapterScanner
from portside.scan.codec import decode_inventory, encode_inventory
from portside.scan.inventory import take_inventory
from portside.scan.jobs import ScanWorker, rematch_job, scan_all_job
from portside.scan.match import match
from portside.scan.model import Finding, Inventory
from portside.scan.service import SPDX_JSON, ScanService, ScanTools
from portside.scan.vulndb.status import DatabaseStatus, database_status
from portside.startup import (
    ADMIN_USERNAME,
    bootstrap,
    configure_logging,
    has_schema,
    load_or_create_signing_key,
    migrate,
    site_signing_keys,
    upgrade_database,
)
from portside.storage.driver import BlobStore
from portside.storage.fs import FsBlobStore
from portside.ui.app import build_pages
from portside.upkeep.gc import GarbageCollector, GcOptions
from portside.upkeep.jobs import JobHandler, JobLog, JobRunner
from portside.upkeep.purge import UploadPurger
from portside.upkeep.schedule import Scheduler
from portside.upkeep.scrub import Scrubber

__all__ = [
    "bootstrap",
    "build",
    "configure_logging",
    "load_or_create_signing_key",
    "migrate",
    "NoRegistry",
    "operator_services",
    "operator_upkeep",
    "serve_app",
    "upgrade_database",
]


def _blob_store(settings: Settings, locks: Locks) -> BlobStore:
    """The blob store `storage_url` names: a directory (file://) or a bucket (s3://)."""
    url = settings.storage_url
    reserve = settings.storage_reserve_mib * 1024 * 1024
    if url is None:
        return FsBlobStore(settings.data_dir, reserve)
    if url.startswith("file://"):
        return FsBlobStore(Path(url.removeprefix("file://")), reserve)
    if url.startswith("s3://"):
        # Imported here: a single machine on the filesystem never loads the AWS SDK.
        from portside.storage.s3 import S3BlobStore, S3Config

        return S3BlobStore(
            S3Config.from_url(
                url,
                endpoint_url=settings.s3_endpoint_url,
                region=settings.s3_region,
                path_style=settings.s3_path_style,
                sse=settings.s3_server_side_encryption,
                kms_key_id=settings.s3_sse_kms_key_id,
                storage_class=settings.s3_storage_class,
                part_size=settings.s3_part_size_mib * 1024 * 1024,
                redirect=settings.s3_redirect,
                presign_ttl=settings.s3_presign_ttl_seconds,
            ),
            locks,
        )
    raise ValueError(f"storage_url must be file:///PATH or s3://BUCKET/PREFIX, not {url!r}")


# --- Docker Content Trust (Notary) -----------------------------------------------------
def _notary_tokens(settings: Settings, signing_key: ec.EllipticCurvePrivateKey) -> ForeignService | None:
    """Tokens for Notary's service, and the token key's certificate Notary verifies them with."""
    if not settings.notary_service:
        return None
    write_token_certificate(settings.token_certificate_path, signing_key)
    return ForeignService(settings.notary_service, settings.gun_prefix)


def content_trust(settings: Settings, tokens: TokenService, roots: KeyStore) -> ContentTrust | None:
    """Notary's verdicts on digests (for the pull policy), when notary_url and notary_service
    are set; the roots trusted on first use are recorded in `roots`."""
    if not settings.notary_url or not settings.notary_service:
        return None
    client = NotaryClient(
        settings.notary_url,
        ContentTrust.token_minter(tokens, settings.notary_service),
        ca_file=settings.notary_ca_file,
    )
    return ContentTrust(client, settings.gun_prefix, roots=roots)


# ----------------------------------------------------------------------------------------
def build(settings: Settings) -> ASGIApp:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    coordinator = _coordinator(settings)
    locks = coordinator.locks
    store = _blob_store(settings, locks)
    engine = create_engine(settings.sqlalchemy_url, settings.database_pool_size, settings.database_max_overflow)
    # Every store that changes manifests or tags moves the registry's generation (the
    # manifest cache's invalidation); account changes move the accounts' generation.
    database = SqlDatabase(
        engine,
        after_commit=coordinator.registry_changes.bump,
        default_storage_limit=settings.default_project_storage_limit,
    )
    accounts = SqlAccounts(engine, after_commit=coordinator.account_changes.bump)
    throttle = coordinator.login_throttle(settings.login_failure_limit, settings.login_failure_window_seconds)
    authenticator = Authenticator(accounts, accounts, accounts, throttle, coordinator.account_changes)
    policy = Policy(accounts)
    signing_key = load_or_create_key(settings.signing_key_path)
    tokens = TokenService(
        signing_key,
        settings.token_service,
        settings.token_ttl_seconds,
        settings.refresh_token_ttl_seconds,
        foreign=_notary_tokens(settings, signing_key),
    )
    controller = AccessController(
        authenticator,
        tokens,
        policy,
        accounts,
        realm=f"{settings.base_url}/service/token",
        admin_creates_projects=settings.admin_creates_projects,
        # The same generation as the authenticator's: tokens are checked again after
        # every account, project or membership change committed anywhere.
        account_changes=coordinator.account_changes,
    )
    changes = _change_counter(settings, engine, coordinator)
    entries = settings.manifest_cache_entries
    registry = Services(
        blobs=BlobService(
            store, database, database, locks, BlobSizeCache(changes, entries) if changes is not None else None
        ),
        uploads=UploadService(
            store,
            database,
            locks,
            UploadIds(derived_secret(signing_key, "upload-ids"), settings.upload_max_idle_seconds),
        ),
        manifests=ManifestService(
            database, settings.max_manifest_bytes, ManifestCache(changes, entries) if changes is not None else None
        ),
        catalog=CatalogService(database),
        authorizer=OpenRegistry() if settings.open_registry else controller,
        token_issuer=None if settings.open_registry else controller,
        trail=AuditTrail(accounts, accounts, database),
        readiness_checks={
            "storage": store.check,
            "database": database.check,
            **({"redis": coordinator.check} if coordinator.shared else {}),
        },
        log_requests=settings.log_requests,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_seconds=settings.body_timeout_seconds,
        nginx_blobs=_nginx_blobs(settings, store),
        blob_slices=SliceSlots(settings.blob_slice_sends),
    )
    sessions = SqlSessions(engine)
    scans = _scanning_engine(settings, engine)
    # What scans found moves the pull policies' verdicts; the generation reaches every
    # process wherever the registry's does, as the projects' (see _change_counter).
    scan_changes = coordinator.scan_changes if changes is not None else None
    scanning = _scanning(settings, scans, registry, scan_changes)
    upkeep = _upkeep(settings, scans, store, coordinator, Guard(policy, accounts), scanning.handlers)
    # Projects change with the accounts' generation; it reaches every process wherever the
    # registry's does (see _change_counter).
    project_changes = coordinator.account_changes if changes is not None else None
    management = _management(
        settings,
        sessions,
        accounts,
        database,
        registry,
        authenticator,
        policy,
        upkeep,
        store,
        changes,
        scanning,
        project_changes,
        scan_changes,
        content_trust(settings, tokens, SqlKeys(database.engine)),
        locks,
        PullTokens(controller, authenticator),
    )
    proxy = _pull_through(settings, management, accounts, database, registry, project_changes)
    if proxy is not None:
        registry = replace(registry, proxy=proxy)

    async def purge_old_audit_records() -> None:
        await purge_expired(SqlAccounts(scans), settings.audit_retention_days)

    async def purge_expired_sessions() -> None:
        await SqlSessions(scans).purge_sessions(datetime.now(UTC))

    async def expire_cve_exports() -> None:
        if management.cve_exports is not None:
            await management.cve_exports.expire()

    async def purge_old_events() -> None:
        if settings.event_retention_days:
            await SqlEvents(scans).prune_events(datetime.now(UTC) - timedelta(days=settings.event_retention_days))

    adapter = _scanner_adapter(settings, scans, scanning)
    adapter_routes_: list[BaseRoute] = []
    adapter_periodic: list[tuple[float, Callable[[], Awaitable[object]]]] = []
    adapter_close: list[Callable[[], Awaitable[None]]] = []
    if adapter is not None:
        assert settings.scanner_adapter_token is not None  # the settings insist
        adapter_routes_ = adapter_routes(adapter, settings.scanner_adapter_token)
        adapter_periodic = [(adapter.heartbeat_seconds, adapter.heartbeat), (3600.0, adapter.purge)]
        adapter_close = [adapter.close]

    disposals = [engine.dispose] if scans is engine else [scans.dispose, engine.dispose]
    return build_app(
        registry,
        on_shutdown=_closing(
            *([proxy.close] if proxy is not None else []),
            *adapter_close,
            *([management.preheat.close] if management.preheat is not None else []),
            *([management.replication.close] if management.replication else []),
            scanning.worker.close,
            upkeep.runner.close,
            store.close,
            *disposals,
            coordinator.close,
        ),
        extra_routes=[*management_routes(management), *adapter_routes_],
        pages=build_pages(management, registry),
        mirrors=(settings.mirror_namespaces, settings.mirror_hosts),
        periodic=[
            (3600.0, purge_old_audit_records),
            (3600.0, purge_expired_sessions),
            (3600.0, purge_old_events),
            (3600.0, expire_cve_exports),
            *upkeep.periodic,
            *_registry_periodic(settings, management),
            *_replication_periodic(settings, management),
            *_preheat_periodic(settings, management),
            *_scan_periodic(settings, scanning, upkeep.runner),
            *adapter_periodic,
        ],
    )


def _pull_through(
    settings: Settings,
    management: ManagementServices,
    accounts: SqlAccounts,
    database: SqlDatabase,
    registry: Services,
    project_changes: ChangeCounter | None,
) -> PullThroughCache | None:
    """The pull-through cache over the registry's own services, and the hooks that let
    system administrators make proxy projects of the registries."""
    registries = management.registries
    if registries is None:
        return None
    endpoints = SqlEndpoints(database.engine)
    failover = SqlFailover(database.engine)

    async def failover_urls(endpoint: Endpoint) -> list[str]:
        return await failover.failover_urls(endpoint.id)

    projects = ProxyProjects(
        accounts,
        endpoints,
        registries,
        project_changes,
        timeout=settings.proxy_timeout_seconds,
        mirrors=failover_urls,
    )

    async def registry_name(registry_id: int) -> str | None:
        found = await endpoints.get(registry_id)
        return found.name if found is not None else None

    async def proxied_by(endpoint: Endpoint) -> str | None:
        users = await management.projects.proxying(endpoint.id)
        return f"the proxy cache project {users[0].name}" if users else None

    management.projects.registry_name = registry_name
    registries.in_use.append(proxied_by)
    return PullThroughCache(
        projects,
        registry.manifests,
        registry.blobs,
        registry.uploads,
        settings.data_dir / "proxy-spool",
        check_timeout=settings.proxy_check_timeout_seconds,
    )


def _preheat_periodic(
    settings: Settings, management: ManagementServices
) -> list[tuple[float, Callable[[], Awaitable[object]]]]:
    """The P2P instances' background health check, as often as the registries'; and the
    scan-completed preheats, as often as the job schedules are looked at."""
    if management.preheat is None:
        return []
    return [
        (settings.registry_health_seconds, management.preheat.instances.check_due),
        (settings.job_poll_seconds, management.preheat.scans_completed),
    ]


def _registry_periodic(
    settings: Settings, management: ManagementServices
) -> list[tuple[float, Callable[[], Awaitable[object]]]]:
    """The registries' background health check: each registry once per interval, and one
    added or changed within a round of at most 15 s."""
    if management.registries is None:
        return []
    return [(min(15.0, settings.registry_health_seconds), management.registries.check_due)]


def _replication_periodic(
    settings: Settings, management: ManagementServices
) -> list[tuple[float, Callable[[], Awaitable[object]]]]:
    """Replication's round: scheduled policies that are due, then the tasks waiting (new
    ones, and failed ones whose backoff has passed); a round only starts them."""
    if management.replication is None:
        return []
    return [(settings.replication_poll_seconds, management.replication.tick)]


def _scanner_adapter(settings: Settings, engine: AsyncEngine, scanning: Scanning) -> AdapterServer | None:
    """Portside as a Harbor scanner adapter, when enabled: the built-in scanner's functions
    over artifacts pulled from the asking registry, its requests kept in the database."""
    if not settings.scanner_adapter_enabled:
        return None
    from portside.meta.sql.adapter_scans import SqlAdapterScans

    b = BUILTIN_SCANNER
    return AdapterServer(
        SqlAdapterScans(engine),
        scanning.tools,
        scanning.status,
        AdapterScanner(b.name, b.vendor, portside.__version__),
        concurrency=settings.scanner_adapter_concurrency,
        # Five heartbeats fit in the time after which a request counts as abandoned.
        heartbeat_seconds=min(60.0, settings.scanner_adapter_abandon_seconds / 5),
        abandoned_seconds=settings.scanner_adapter_abandon_seconds,
    )


def _nginx_blobs(settings: Settings, store: BlobStore) -> NginxBlobLocation | None:
    if settings.nginx_blob_location is None:
        return None
    if not isinstance(store, FsBlobStore):
        raise ValueError("nginx_blob_location needs the filesystem store: nginx sends files from its disk")
    return NginxBlobLocation(settings.nginx_blob_location, store.blobs_root)


def _scanning_engine(settings: Settings, engine: AsyncEngine) -> AsyncEngine:
    """The engine for long scans and bulk deletes (GC, scrub, purges). Requests' SQLite
    statements run on the event loop's thread, which a scan of the whole database would
    hold up; these run on worker threads instead. PostgreSQL's driver never blocks."""
    if engine.dialect.name != "sqlite":
        return engine
    return create_engine(settings.sqlalchemy_url, pool_size=2, max_overflow=2, inline=False)


def _closing(*closers: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """One shutdown step that closes each resource in turn, even when one of them fails."""

    async def close_all() -> None:
        for close in closers:
            try:
                await close()
            except Exception:
                logging.getLogger("portside").exception("closing %s failed", close)

    return close_all


@dataclass(frozen=True)
class OperatorServices:
    """What `portside user|project|robot` act through: the API's services, as the operator."""

    users: UserService
    projects: ProjectService
    robots: RobotService


@asynccontextmanager
async def operator_services(settings: Settings) -> AsyncIterator[OperatorServices]:
    await _open_existing_registry(settings)
    engine = create_engine(settings.sqlalchemy_url, pool_size=1)
    # Account changes made here must reach the servers' verified-credentials caches.
    coordinator = _coordinator(settings)
    try:
        accounts = SqlAccounts(engine, after_commit=coordinator.account_changes.bump)
        guard = Guard(Policy(accounts), accounts)
        quotas = SqlQuotas(engine, settings.default_project_storage_limit)
        yield OperatorServices(
            UserService(accounts, accounts, guard, SqlSessions(engine)),
            ProjectService(
                accounts, accounts, guard, QuotaService(quotas, accounts, guard, settings.default_project_storage_limit)
            ),
            RobotService(accounts, accounts, guard),
        )
    finally:
        await _closing(engine.dispose, coordinator.close)()


def _coordinator(settings: Settings) -> Coordinator:
    """Redis when configured (what several instances must share), else this machine's own."""
    if settings.redis_url:
        from portside.coord.redis import RedisCoordinator  # only deployments with Redis load it

        return RedisCoordinator.from_url(
            settings.redis_url, settings.redis_key_prefix, lock_lease=settings.redis_lock_lease_seconds
        )
    return LocalCoordinator(settings.data_dir / "locks")


def _change_counter(settings: Settings, engine: AsyncEngine, coordinator: Coordinator) -> ChangeCounter | None:
    """What the in-memory lookup caches watch to know that the registry changed; None
    turns them off."""
    if not settings.manifest_cache_entries:
        return None
    # With Redis, every instance's registry writes move the shared generation; on SQLite
    # (one machine), every process's move the machine's. PostgreSQL without Redis may have
    # other instances, whose writes would go unnoticed: no cache then.
    if coordinator.shared or engine.dialect.name == "sqlite":
        return coordinator.registry_changes
    return None


class NoRegistry(Exception):
    """The settings of a command that manages a registry point at none."""


async def _open_existing_registry(settings: Settings) -> None:
    """Make sure `settings` name a registry that exists, and bring its schema up to date.

    The operator's commands manage the registry a server runs on; where they find none,
    their settings point somewhere else (the default data directory is relative to where
    the command runs). Making a new, empty registry there would only hide that."""
    require_extras(settings)
    url = make_url(settings.sqlalchemy_url)
    if url.get_backend_name() == "sqlite":
        database = Path(url.database or "")
        # Opening a missing SQLite file would create it.
        if not database.is_file():
            missing = f"its database {database.resolve()} does not exist"
        elif not await has_schema(settings):
            missing = f"its database {database.resolve()} holds no Portside schema"
        else:
            missing = None
    else:
        shown = make_url(settings.database_url or "").render_as_string(hide_password=True)
        try:
            found = await has_schema(settings)
        except (OSError, DBAPIError) as error:
            raise NoRegistry(f"cannot open the database {shown}: {error}") from None
        missing = None if found else f"its database {shown} holds no Portside schema"
    if missing is not None:
        raise NoRegistry(
            f"no Portside registry at data directory {settings.data_dir.resolve()}: {missing}.\n"
            "This command manages an existing registry and makes none. Point it at the server's with"
            " --data-dir DIR, --config FILE (the server's configuration file) or PORTSIDE_DATA_DIR"
            " (and PORTSIDE_DATABASE_URL, when the server has a database_url);"
            " `portside serve` creates a registry when it first starts."
        )
    await upgrade_database(settings)


def serve_app() -> ASGIApp:
    """Granian's factory in each server process: the app for the settings `serve` handed off."""
    settings = received_settings()
    configure_logging(settings)
    return build(settings)


def _management(
    settings: Settings,
    sessions: SqlSessions,
    accounts: SqlAccounts,
    database: SqlDatabase,
    registry: Services,
    authenticator: Authenticator,
    policy: Policy,
    upkeep: Upkeep,
    store: BlobStore,
    changes: ChangeCounter | None,
    scanning: Scanning | None = None,
    project_changes: ChangeCounter | None = None,
    scan_changes: Generation | None = None,
    notary: ContentTrust | None = None,
    locks: Locks | None = None,
    pull_tokens: PullTokens | None = None,
) -> ManagementServices:
    """The management services (of /api/v2.0, /c/login and the web UI) over the same stores
    as /v2; `changes`, the registry's generation the lookup caches watch (None: no caches)."""
    # Deleting a repository or an artifact removes manifests and tags the cache serves.
    artifacts = SqlArtifacts(database.engine, after_commit=database.after_commit)
    guard = Guard(policy, accounts)
    limit = settings.default_project_storage_limit
    # Projects' usage is remembered while the registry's generation stands (see sql/quotas.py).
    usage = UsageCache(changes, settings.manifest_cache_entries) if changes is not None else None
    quotas = QuotaService(SqlQuotas(database.engine, limit, usage), accounts, guard, limit)
    totp = TotpService(accounts, accounts, authenticator)
    # Allowlists move the accounts' generation: the pull policy keeps them while it stands.
    allowlists = CveAllowlistService(guard, SqlAllowlists(database.engine, after_commit=accounts.after_commit))
    projects = ProjectService(accounts, accounts, guard, quotas, allowlists)
    # Trust policies move the accounts' generation too: the pull policy keeps them while it stands.
    trust = TrustPolicyService(guard, SqlTrust(database.engine, after_commit=accounts.after_commit))
    signatures = SignatureService(registry.manifests, registry.blobs, settings.manifest_cache_entries)
    repositories = RepositoryService(artifacts, accounts, guard)
    artifact_service = ArtifactService(
        artifacts,
        registry.manifests,
        accounts,
        guard,
        ImageConfigs(registry.blobs),
        ArtifactCopier(registry.manifests, registry.blobs),
    )
    scan_api = None
    cve_exports = None
    checks = dict(registry.readiness_checks)
    robots = RobotService(accounts, accounts, guard)
    if scanning is not None:
        scanner_registry = _scanner_registry(guard, database)
        # The API's store runs on the requests' engine; the worker's on the scanning engine.
        scan_api = ScanApiService(
            guard,
            artifact_service,
            SqlScans(database.engine, after_commit=_bumping(scan_changes)),
            scanning.service,
            scanning.worker,
            scanning.status,
            SqlJobs(database.engine),
            project_changes=project_changes,
            registry=scanner_registry,
            set_project_metadata=accounts.update_metadata,
        )
        scanning.worker.external = ExternalScans(
            accounts, scan_api, scanner_registry, scanning.service, robots, settings.base_url
        )
        signing_keys = SigningKeys(SqlKeys(database.engine), site_signing_keys(settings), settings.push_signer)
        signer = ServerSigner(
            accounts,
            signing_keys,
            registry.manifests,
            registry.uploads,
            settings.base_url.split("://", 1)[-1],
        )
        trust.server_key = signer.public_key
        trust.signers = (signing_keys.default, *(k for k in signing_keys.kinds() if k != signing_keys.default))
        registry.manifests.after_push = _each(scan_api.pushed, signer.pushed)
        # Projects' vulnerability policies read the scans' reports (Harbor's prevent_vul).
        registry.manifests.pull_gate = scan_api.pull_policy = PullPolicy(
            accounts,
            accounts,
            allowlists,
            SqlScans(database.engine),
            project_changes,
            scan_changes,
            registry.manifests,
            trust=trust,
            signatures=signatures,
            registry_changes=changes,
            content_trust=notary,
        )
        # The export's long reads run on the scanning engine, as scans' do.
        cve_exports = CveExportService(
            guard,
            SqlJobs(database.engine),
            upkeep.runner,
            scanning.store,
            SqlArtifacts(scanning.store.engine),
            SqlExportFiles(database.engine),
            BUILTIN_SCANNER.name,
            timedelta(hours=settings.cve_export_retention_hours),
        )
        upkeep.runner.add_handler(EXPORT_FAMILY, cve_exports.job)
        # /health only (not /readyz: a stale database is no reason to stop serving pulls).
        checks["vulnerability-database"] = scanning.check
    endpoints = SqlEndpoints(database.engine)
    registries = RegistryService(
        guard, endpoints, accounts, default_adapters(), health_interval=settings.registry_health_seconds, locks=locks
    )
    replication = _replication(settings, guard, database, accounts, registries, endpoints, robots, projects)
    registry.manifests.after_push = _each(
        *([registry.manifests.after_push] if registry.manifests.after_push else []), replication.pushed
    )
    registry.manifests.after_delete = replication.deleted
    registry.manifests.after_referrer = replication.referred
    preheat = None
    if pull_tokens is not None:
        preheat_store = SqlPreheat(database.engine)
        preheat = PreheatService(
            guard,
            preheat_store,
            InstanceService(guard, preheat_store, accounts, default_drivers()),
            artifacts,
            pull_tokens,
            accounts,
            settings.base_url,
            scheduler=upkeep.scheduler,
            runner=upkeep.runner,
            events=SqlEvents(database.engine),
        )
        # Only what a pull would be let through is preheated (None: no pull policy here).
        preheat.pull_policy = scan_api.pull_policy if scan_api is not None else None
        pushed = registry.manifests.after_push
        registry.manifests.after_push = _each(pushed, preheat.pushed) if pushed is not None else preheat.pushed
    facts = SystemFacts(
        portside.__version__, settings.base_url, "filesystem" if isinstance(store, FsBlobStore) else "s3"
    )
    return ManagementServices(
        authenticator=authenticator,
        users=UserService(accounts, accounts, guard, sessions),
        totp=totp,
        projects=projects,
        quotas=quotas,
        members=MemberService(accounts, accounts, accounts, guard),
        robots=robots,
        repositories=repositories,
        artifacts=artifact_service,
        audit=AuditService(accounts, guard),
        sessions=SessionService(sessions, accounts, authenticator, totp, settings.session_ttl_seconds),
        systeminfo=SystemInfoService(guard, facts, _disk_of(store)),
        statistics=StatisticsService(guard, accounts, artifacts),
        search=SearchService(projects, repositories, SqlSearch(database.engine), guard),
        permissions=PermissionService(guard),
        readiness_checks=checks,
        advisory_components=frozenset({"vulnerability-database"}),
        secure_cookies=settings.base_url.startswith("https://"),
        gc=upkeep.gc,
        scrub=upkeep.scrub,
        scans=scan_api,
        scan_all=upkeep.scan_all,
        cve_exports=cve_exports,
        allowlists=allowlists,
        trust=trust,
        signatures=signatures,
        registries=registries,
        replication=replication,
        failover=FailoverService(guard, SqlFailover(database.engine), registries, accounts),
        preheat=preheat,
    )


def _replication(
    settings: Settings,
    guard: Guard,
    database: SqlDatabase,
    accounts: SqlAccounts,
    registries: RegistryService,
    endpoints: SqlEndpoints,
    robots: RobotService,
    projects: ProjectService,
) -> ReplicationService:
    """Replication's policies and executions, and the worker that runs its tasks here; this
    Portside's own side is its /v2 at a loopback address (mgmt/replication_runs.py)."""
    host = settings.host if settings.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    local_url = f"http://{'[' + host + ']' if ':' in host else host}:{settings.port}"

    async def ensure_project(name: str) -> None:
        # A pull policy's namespace, made as Harbor makes it: private, owned by the admin.
        if await accounts.get_project(name) is not None:
            return
        admin = await accounts.get_user(ADMIN_USERNAME)
        with contextlib.suppress(Conflict):
            await projects.add(name, admin.user_id if admin else 1, False, {}, by="replication")

    store = SqlReplication(database.engine)
    sides = Sides(registries, endpoints, robots, local_url, ensure_project)
    retries = Retries(
        attempts=settings.replication_attempts,
        base_seconds=settings.replication_retry_seconds,
        max_seconds=settings.replication_retry_max_seconds,
    )
    worker = ReplicationWorker(store, sides, retries, slots=settings.replication_workers)
    return ReplicationService(guard, store, registries, sides, worker)


def _disk_of(store: BlobStore) -> Callable[[], Awaitable[Volume]] | None:
    """The filesystem store's disk, for /systeminfo/volumes; an object store has none."""
    if not isinstance(store, FsBlobStore):
        return None
    root = store.root

    async def disk() -> Volume:
        usage = await asyncio.to_thread(shutil.disk_usage, root)
        return Volume(total=usage.total, free=usage.free)

    return disk


@dataclass(frozen=True)
class Upkeep:
    """GC, upload purging and scrub as wired for one process: the jobs API's services,
    the runner (the CLI runs jobs through it), and the periodic tasks a server runs."""

    runner: JobRunner
    gc: SystemJobService
    scrub: SystemJobService
    periodic: list[tuple[float, Callable[[], Awaitable[object]]]]
    scan_all: SystemJobService | None = None
    scheduler: Scheduler | None = None  # for services that schedule jobs of their own


def _upkeep(
    settings: Settings,
    engine: AsyncEngine,
    store: BlobStore,
    coordinator: Coordinator,
    guard: Guard,
    scan_jobs: Mapping[str, JobHandler] | None = None,
) -> Upkeep:
    locks = coordinator.locks
    # GC unlinks manifests, which the manifest cache serves: its commits move the generation.
    upkeep_store = SqlUpkeep(engine, after_commit=coordinator.registry_changes.bump)
    jobs = SqlJobs(engine)
    purger = UploadPurger(upkeep_store, store, settings.upload_max_idle_seconds)
    collector = GarbageCollector(upkeep_store, store, locks, settings.gc_grace_seconds, purger)
    scrubber = Scrubber(upkeep_store, store, locks)
    runner = JobRunner(
        jobs,
        {"gc": collector.job, "scrub": scrubber.job, **(scan_jobs or {})},
        checks={"gc": GcOptions.from_parameters, "scrub": Scrubber.options},
    )
    scheduler = Scheduler(jobs, runner)

    async def purge_idle_uploads() -> None:
        await purger.purge()

    async def run_due_schedules() -> None:
        await scheduler.tick()

    return Upkeep(
        runner=runner,
        gc=SystemJobService("gc", "garbage-collection", guard, jobs, runner, scheduler),
        scrub=SystemJobService("scrub", "scrub", guard, jobs, runner, scheduler),
        scan_all=SystemJobService("scan_all", "scan-all", guard, jobs, runner, scheduler) if scan_jobs else None,
        periodic=[
            (settings.job_poll_seconds, run_due_schedules),
            (min(3600.0, settings.upload_max_idle_seconds / 4), purge_idle_uploads),
        ],
        scheduler=scheduler,
    )


@dataclass(frozen=True)
class Scanning:
    """The built-in scanner as wired for one process: the service, the queue's worker, the
    job runner's scan kinds, and the vulnerability database's status and health check."""

    service: ScanService
    worker: ScanWorker
    store: SqlScans
    tools: ScanTools
    handlers: dict[str, JobHandler]
    status: Callable[[], Awaitable[DatabaseStatus | None]]
    check: Callable[[], Awaitable[str | None]]
    update_due: Callable[[], Awaitable[bool]]  # whether a configured vulndb URL is due


def _each(
    *hooks: Callable[[str, Manifest], Awaitable[None]],
) -> Callable[[str, Manifest], Awaitable[None]]:
    """One after-push hook that tells each of `hooks` in turn (each only queues its work)."""

    async def told(repository: str, manifest: Manifest) -> None:
        for hook in hooks:
            await hook(repository, manifest)

    return told


def _bumping(changes: Generation | None) -> Callable[[], Awaitable[None]] | None:
    """The after-commit hook that bumps `changes` (None: nothing to tell)."""
    return changes.bump if changes is not None else None


def _scanner_registry(guard: Guard, database: SqlDatabase) -> ScannerRegistry:
    """The scanner registry: the built-in scanner and the adapters registered in the store."""
    from portside.meta.sql.scanners import SqlScannerRegistrations

    b = BUILTIN_SCANNER
    builtin = builtin_view(b.uuid, b.name, b.vendor, b.version, b.description)
    return ScannerRegistry(guard, SqlScannerRegistrations(database.engine, after_commit=database.after_commit), builtin)


def _scanning(
    settings: Settings, engine: AsyncEngine, registry: Services, changes: Generation | None = None
) -> Scanning:
    """Scans run on `engine` (the scanning engine: long reads stay off the event loop);
    what they find bumps `changes`."""
    from portside.meta.sql.vulndb import SqlVulnerabilities

    vulnerabilities = SqlVulnerabilities(engine)
    store = SqlScans(engine, after_commit=_bumping(changes))
    registry_host = settings.base_url.split("://", 1)[-1]

    async def generation() -> int:
        return await vulnerabilities.generation()

    async def matched(inventory: Inventory) -> list[Finding]:
        return await match(inventory, vulnerabilities)

    def sbom(
        media_type: str, inventory: Inventory, repository: str, digest: str, tags: tuple[str, ...]
    ) -> dict[str, Any]:
        # Loaded by the first SBOM made: CycloneDX's model weighs on every server process.
        from portside.scan.sbom import SbomSubject, cyclonedx_document, spdx_document

        subject = SbomSubject(repository, digest, tags, datetime.now(UTC), portside.__version__, registry_host)
        return spdx_document(inventory, subject) if media_type == SPDX_JSON else cyclonedx_document(inventory, subject)

    tools = ScanTools(take_inventory, matched, generation, encode_inventory, decode_inventory, sbom)
    service = ScanService(store, registry.manifests, registry.blobs, registry.uploads, tools, portside.__version__)
    worker = ScanWorker(
        store, service, concurrency=settings.scan_concurrency, lease_seconds=settings.scan_lease_seconds
    )

    async def status() -> DatabaseStatus | None:
        return await database_status(vulnerabilities, float(settings.vulndb_max_age))

    async def check() -> str | None:
        found = await database_status(vulnerabilities, float(settings.vulndb_max_age))
        if not found.sources:
            raise RuntimeError("no vulnerability database imported: run `portside vulndb import`")
        if found.stale:
            raise RuntimeError(f"stale: the oldest source was updated {found.updated_at}")
        return None

    async def update_database(parameters: Mapping[str, Any], log: JobLog) -> Mapping[str, Any]:
        """The scheduled update from `vulndb_urls`: each due URL fetched with its ETag and
        Last-Modified, so an unchanged source costs a 304."""
        from portside.scan.vulndb.update import update_if_due  # the importers load when one runs

        outcomes = await update_if_due(vulnerabilities, settings.vulndb_urls, float(settings.vulndb_update_interval))
        for outcome in outcomes:
            what = "unchanged" if outcome.unchanged else f"{outcome.record_count} records"
            log.info(f"{outcome.origin}: {what}")
            for skipped in outcome.skipped:
                log.warning(f"{outcome.origin}: skipped {skipped}")
        if settings.vulndb_artifact:
            await _update_from_artifact(settings.vulndb_artifact, vulnerabilities, registry, log)
        return {"urls": len(outcomes)}

    async def update_due() -> bool:
        from portside.scan.vulndb.update import due_urls

        sources = await vulnerabilities.sources()
        if settings.vulndb_artifact and await _artifact_moved(settings.vulndb_artifact, sources, registry):
            return True
        return bool(due_urls(sources, settings.vulndb_urls, float(settings.vulndb_update_interval)))

    handlers: dict[str, JobHandler] = {
        "scan_all": scan_all_job(store, worker),
        "scan_rematch": rematch_job(store, service, generation),
        "vulndb_update": update_database,
    }
    return Scanning(service, worker, store, tools, handlers, status, check, update_due)


async def _update_from_artifact(
    artifact: str, vulnerabilities: VulnerabilityStore, registry: Services, log: JobLog
) -> None:
    """The scheduled update's part for `vulndb_artifact`: import it when its tag moved."""
    from portside.scan.vulndb.artifact import import_artifact, parse_artifact_reference

    try:
        outcome = await import_artifact(
            vulnerabilities, registry.manifests, registry.blobs, parse_artifact_reference(artifact)
        )
    except ValueError as error:
        log.warning(f"{artifact}: {error}")
        return
    log.info(f"{outcome.origin}: {'unchanged' if outcome.unchanged else f'{outcome.record_count} records'}")


async def _artifact_moved(artifact: str, sources: Sequence[SourceRecord], registry: Services) -> bool:
    """Whether `vulndb_artifact`'s tag names a digest no stored source came from."""
    from portside.scan.vulndb.artifact import origin_of, parse_artifact_reference, resolve_artifact

    try:
        where = parse_artifact_reference(artifact)
        digest = await resolve_artifact(registry.manifests, where)
    except ManifestUnknown:
        return False  # not pushed yet
    except ValueError as error:
        logging.getLogger("portside.scan").warning("vulndb_artifact: %s", error)
        return False
    return not any(source.origin == origin_of(where.repository, digest) for source in sources)


def _scan_periodic(
    settings: Settings, scanning: Scanning, runner: JobRunner
) -> list[tuple[float, Callable[[], Awaitable[object]]]]:
    """Take queued scans (after a restart, or queued by another instance), and match stored
    inventories again once the vulnerability database has moved."""

    async def take_queued() -> None:
        scanning.worker.wake()  # in the background: a busy worker would hold up the poll

    async def rematch_when_moved() -> None:
        current = await scanning.status()
        if current is None or not current.sources:
            return
        if await scanning.store.stale_inventories(current.generation, None, 1):
            try:
                await runner.start("scan_rematch", "Schedule", {})
            except Conflict:
                pass  # running already (here or on another instance)

    async def update_database_when_due() -> None:
        if (settings.vulndb_urls or settings.vulndb_artifact) and await scanning.update_due():
            try:
                await runner.start("vulndb_update", "Schedule", {})
            except Conflict:
                pass  # running already (here or on another instance)

    return [
        (settings.job_poll_seconds, take_queued),
        (settings.job_poll_seconds, rematch_when_moved),
        (settings.job_poll_seconds, update_database_when_due),
    ]


@asynccontextmanager
async def operator_upkeep(settings: Settings) -> AsyncIterator[Upkeep]:
    """What `portside gc|scrub` run jobs through: the server's stores, as the operator."""
    await _open_existing_registry(settings)
    # The same coordinator as the servers: GC must share their blob locks and move the
    # generation their caches watch.
    coordinator = _coordinator(settings)
    store = _blob_store(settings, coordinator.locks)
    engine = create_engine(settings.sqlalchemy_url, pool_size=2)
    try:
        accounts = SqlAccounts(engine, after_commit=coordinator.account_changes.bump)
        yield _upkeep(settings, engine, store, coordinator, Guard(Policy(accounts), accounts))
    finally:
        await _closing(store.close, engine.dispose, coordinator.close)()


from portside.meta.vulndb import VulnerabilityStore  # noqa: E402  (the protocol it yields)


@asynccontextmanager
async def open_vulnerability_store(settings: Settings) -> AsyncIterator[VulnerabilityStore]:
    """The vulnerability database of the registry `settings` name (which must exist, as for
    the other operator's commands), for `portside vulndb` and anything else outside a server."""
    from portside.meta.sql.vulndb import SqlVulnerabilities  # only what uses the database loads it

    await _open_existing_registry(settings)
    # On threads: an import writes 10^5 rows in one transaction, which must not hold the
    # event loop of a server that runs the scheduled update.
    engine = create_engine(settings.sqlalchemy_url, pool_size=2, inline=False)
    try:
        yield SqlVulnerabilities(engine)
    finally:
        await engine.dispose()


@asynccontextmanager
async def open_registry_reads(settings: Settings) -> AsyncIterator[tuple[ManifestService, BlobService]]:
    """The manifests and blobs of the registry `settings` name, read from its own storage
    (`portside vulndb import oci://…`: no HTTP to the server)."""
    await _open_existing_registry(settings)
    coordinator = _coordinator(settings)
    store = _blob_store(settings, coordinator.locks)
    engine = create_engine(settings.sqlalchemy_url, pool_size=1)
    try:
        database = SqlDatabase(engine, default_storage_limit=settings.default_project_storage_limit)
        yield (
            ManifestService(database, settings.max_manifest_bytes),
            BlobService(store, database, database, coordinator.locks),
        )
    finally:
        await _closing(store.close, engine.dispose, coordinator.close)()
