"""Typed settings, read once at start-up: defaults < YAML file < `PORTSIDE_*` environment < CLI flags.

This is the only module that reads the environment or configuration files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

from portside.digits import is_decimal

__all__ = ["Settings", "load_settings", "hand_off", "received_settings"]

# How `portside serve` passes its settings to server worker processes it spawns.
_HANDOFF_VARIABLE = "PORTSIDE_SERVE_SETTINGS_JSON"


def _cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers narrow)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTSIDE_", frozen=True, extra="forbid")

    listen: str = Field("127.0.0.1:5000", description="HOST:PORT to serve on")
    data_dir: Path = Field(Path("portside-data"), description="blobs, uploads and the SQLite database")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite in the data directory")
    log_requests: bool = Field(True, description="one structured line per request at info level")
    log_level: str = "info"
    max_manifest_bytes: int = Field(4 * 1024 * 1024, gt=0)
    max_body_bytes: int = Field(
        1024 * 1024,
        gt=0,
        description="largest other request body (the token endpoint's and /c/login's forms, the management"
        " API's JSON); blob uploads stream unbounded, manifests have max_manifest_bytes",
    )
    body_timeout_seconds: float = Field(
        60.0,
        gt=0,
        description="a request body must arrive whole within this; a blob upload's may pause this long"
        " between two pieces (it may take as long as it needs in all)",
    )
    workers: int = Field(
        default_factory=_cores,
        ge=1,
        description="server processes; default one per core (measured: on 2 cores, 2 serve 1.4-1.8x the"
        " requests of 1; see BENCHMARKS.md)",
    )
    manifest_cache_entries: int = Field(
        10_000, ge=0, description="manifest and blob-link lookups kept in memory (each); 0 turns them off"
    )
    external_url: str | None = Field(
        None, description="URL clients reach Portside at (token realm); default http://LISTEN"
    )
    admin_password: str | None = Field(None, description="first password of the built-in admin")
    token_service: str = Field("portside", description="the `service` of Docker token auth")
    token_ttl_seconds: int = Field(1800, gt=0, description="lifetime of registry tokens")
    refresh_token_ttl_seconds: int = Field(7 * 86400, gt=0, description="lifetime of offline refresh tokens")
    token_key_file: Path | None = Field(None, description="PEM key signing tokens; default DATA_DIR/token-key.pem")
    notary_service: str | None = Field(
        None,
        description="Notary's `service` (its auth options' service): tokens are issued for it too, for"
        " repository:<GUN>:pull,push as for /v2; its rootcertbundle is DATA_DIR/token-key.crt",
    )
    notary_url: str | None = Field(None, description="https://HOST:PORT of notary-server, read for Content Trust")
    notary_ca_file: Path | None = Field(
        None, description="CA certificate(s) notary-server's TLS certificate is checked with"
    )
    notary_gun_prefix: str | None = Field(
        None, description="the registry host[:port] GUNs start with; default the host:port of external_url"
    )
    open_registry: bool = Field(
        False, description="no access control on /v2: anyone may pull, push and delete (trusted networks only)"
    )
    admin_creates_projects: bool = Field(False, description="an admin's push into a missing project creates it")
    login_failure_limit: int = Field(5, ge=1, description="failed logins per account or address per window")
    login_failure_window_seconds: int = Field(300, ge=1)
    audit_retention_days: int = Field(0, ge=0, description="purge audit records older than this; 0 keeps all")
    event_retention_days: int = Field(
        30, ge=0, description="delete outbox events (scans ended, Critical findings) older than this; 0 keeps all"
    )
    cve_export_retention_hours: int = Field(
        24, ge=1, le=24 * 365, description="keep each CVE export's CSV (/export/cve) this long for its owner"
    )
    session_ttl_seconds: int = Field(8 * 3600, gt=0, description="web UI session lifetime")
    runtime_threads: int = Field(1, ge=1, description="I/O threads per worker process")
    blob_slice_sends: int = Field(
        1,
        ge=0,
        description="whole blobs one server process reads and sends itself at once, in 4 MiB slices;"
        " the others, and all when 0, are handed to the server by path (pathsend): faster for a lone"
        " client, about 12 MiB per transfer (see BENCHMARKS.md)",
    )
    event_loop: Literal["uvloop", "asyncio"] = Field(
        "uvloop",
        description="each server process's event loop; uvloop (measured: manifest GETs +10%, small"
        " pushes +25% over asyncio's; see BENCHMARKS.md)",
    )

    # --- scaling out: object storage, PostgreSQL, Redis ---------------------------------
    storage_url: str | None = Field(None, description="file:///PATH or s3://BUCKET/PREFIX; default: the data directory")
    storage_reserve_mib: int = Field(
        1024,
        ge=0,
        description="the filesystem store refuses uploads while less than this is free on its disk"
        " (room kept for the database and uploads in flight); 0: never. Not applied to S3",
    )
    s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO, Ceph); default: AWS")
    s3_region: str | None = Field(None, description="default: from the standard AWS configuration")
    s3_path_style: bool = Field(False, description="path-style addressing (most non-AWS endpoints need it)")
    s3_server_side_encryption: str | None = Field(None, description="AES256 or aws:kms")
    s3_sse_kms_key_id: str | None = Field(None, description="the KMS key for aws:kms")
    s3_storage_class: str | None = Field(None, description="e.g. STANDARD_IA; default: the bucket's")
    s3_part_size_mib: int = Field(16, ge=5, le=5120, description="multipart part size (S3's minimum is 5 MiB)")
    s3_redirect: bool = Field(False, description="answer blob GETs with a redirect to a presigned URL")
    s3_presign_ttl_seconds: int = Field(1200, ge=60, le=7 * 86400)
    nginx_blob_location: str | None = Field(
        None,
        pattern=r"^/[A-Za-z0-9._~/-]*/$",
        description="nginx serves the filesystem store's blobs directory at this internal location"
        " (e.g. /_portside/blobs/): blob GETs are handed to it with X-Accel-Redirect, so nginx"
        " sends the bytes (deploy/nginx/portside-single.conf)",
    )
    database_pool_size: int = Field(10, ge=1, description="connections kept per server process")
    database_max_overflow: int = Field(10, ge=0, description="extra connections a burst may open per process")
    redis_url: str | None = Field(None, description="redis://… shared by every instance; optional")
    redis_key_prefix: str = Field("portside:", description="lets several deployments share one Redis")
    redis_lock_lease_seconds: float = Field(
        15.0, ge=1.0, le=300.0, description="how long a lock outlives an instance that died holding it"
    )

    # --- garbage collection, quotas, uploads ---------------------------------------------
    gc_grace_seconds: int = Field(
        7200, ge=0, description="blobs and untagged manifests younger than this survive GC (pushes in flight)"
    )
    upload_max_idle_seconds: int = Field(86400, ge=60, description="upload sessions idle longer than this are purged")
    registry_health_seconds: float = Field(
        300.0, ge=10, le=3600, description="how often each registry (/registries) is checked in the background"
    )
    mirror_namespaces: dict[str, str] = Field(
        default_factory=dict,
        description="upstream host → proxy project, for containerd's ?ns= requests (http/mirrors.py)",
    )
    mirror_hosts: dict[str, str] = Field(
        default_factory=dict,
        description="host clients use as a mirror → proxy project, for docker's registry-mirrors",
    )
    proxy_timeout_seconds: float = Field(
        30.0, gt=0, le=600, description="how long a proxy project waits on each request to its upstream"
    )
    proxy_check_timeout_seconds: float = Field(
        5.0,
        gt=0,
        le=600,
        description="how long asking the upstream whether a cached tag moved may take",
    )
    job_poll_seconds: float = Field(
        30.0, gt=0, description="how often each server looks for scheduled GC and scrub runs that are due"
    )
    # --- replication ------------------------------------------------------------------
    replication_poll_seconds: float = Field(
        1.0, gt=0, le=60, description="how often each server looks for replication tasks and schedules that are due"
    )
    replication_attempts: int = Field(10, ge=1, le=100, description="runs of a replication task before it is Failed")
    replication_retry_seconds: float = Field(
        5.0, gt=0, description="the wait before a failed replication task runs again, doubled after each failure"
    )
    replication_retry_max_seconds: float = Field(300.0, gt=0, description="the longest wait between two runs of a task")
    replication_workers: int = Field(4, ge=1, le=64, description="replication tasks one server runs at once")
    default_project_storage_limit: int = Field(
        -1, ge=-1, description="bytes a new project may store; -1: unlimited (Harbor's storage_per_project)"
    )
    # --- vulnerability database ---------------------------------------------------------
    vulndb_urls: list[str] = Field(
        default_factory=list,
        description="where the scheduled update fetches advisory data (OSV zips or modified_id.csv folders,"
        " Debian tracker JSON, Alpine secdb, bundles); empty: offline, imported by `portside vulndb import`",
    )
    vulndb_update_interval: int = Field(21600, ge=60, description="seconds between scheduled updates from vulndb_urls")
    vulndb_artifact: str | None = Field(
        None,
        description="<project>/<repo>:<tag> of a vulnerability database OCI artifact in this registry, imported"
        " by the scheduled update whenever the tag's digest changes (the air-gap path)",
    )
    vulndb_max_age: int = Field(
        7 * 86400, ge=60, description="seconds after which a source counts as stale (warned in scan reports)"
    )
    scan_concurrency: int = Field(
        1, ge=1, le=64, description="scans each server runs at once (more wait in the queue, in the database)"
    )
    scan_lease_seconds: float = Field(
        300.0, ge=10.0, description="a scan not heard of for this long (its server died) is taken again"
    )
    # --- Portside as a scanner adapter (Harbor's pluggable scanner API at /api/v1) --------
    scanner_adapter_enabled: bool = Field(
        False, description="serve Harbor's scanner adapter API at /api/v1, so a Harbor can scan with Portside"
    )
    scanner_adapter_token: str | None = Field(
        None,
        min_length=16,
        repr=False,
        description="the token the adapter API requires (Bearer, X-ScannerAdapter-API-Key, or Basic's"
        " password); required when scanner_adapter_enabled",
    )
    scanner_adapter_concurrency: int = Field(2, ge=1, le=64, description="adapter scans each server runs at once")
    scanner_adapter_abandon_seconds: float = Field(
        300.0,
        ge=5.0,
        description="an adapter scan whose server was not heard of for this long (it died) answers failed",
    )
    # --- signing on push (mgmt/signing_keys.py; README "Signing images") ------------------
    push_signer: Literal["portside", "command", "plugin"] = Field(
        "portside",
        description="what signs pushes into projects that sign on push (a project's sign_on_push_signer"
        " may pick another configured one): portside, a key Portside makes per project and keeps; command,"
        " push_signer_command; plugin, the push_signer_plugin entry point",
    )
    push_signer_command: list[str] = Field(
        default_factory=list,
        description="program and arguments (a list, no shell) that signs: the payload on stdin, the"
        ' signature on stdout, e.g. ["openssl", "dgst", "-sha256", "-sign", "/keys/signing.pem"]',
    )
    push_signer_command_input: Literal["payload", "sha256"] = Field(
        "payload", description="what the command reads: the payload, or its 32-byte SHA-256 (tools that sign digests)"
    )
    push_signer_signature: Literal["der", "raw", "base64"] = Field(
        "der",
        description="what the command prints: der (ASN.1 DER ECDSA, or RSA/Ed25519 signature bytes), raw"
        " (ECDSA r||s), base64 (of the der form)",
    )
    push_signer_public_key_file: Path | None = Field(None, description="PEM of the command's public key")
    push_signer_public_key_command: list[str] = Field(
        default_factory=list, description="program and arguments printing that PEM instead (run once per process)"
    )
    push_signer_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        description="a command (or a plug-in's call) slower than this is stopped; the image stays unsigned",
    )
    push_signer_plugin: str | None = Field(
        None, description="name of the `portside.signers` entry point that makes the plugin signer"
    )
    push_signer_plugin_options: dict[str, str] = Field(
        default_factory=dict, repr=False, description="given to the plug-in's factory (key ids, regions, …)"
    )
    # When several clients push the same blob at once the rename that publishes it is the
    # only serialisation point; no tunable is needed for that.

    @field_validator("listen")
    @classmethod
    def _listen_has_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not is_decimal(port):
            raise ValueError("listen must be HOST:PORT")
        return value

    @model_validator(mode="after")
    def _adapter_has_token(self) -> Settings:
        if self.scanner_adapter_enabled and not self.scanner_adapter_token:
            raise ValueError(
                "scanner_adapter_enabled needs scanner_adapter_token (PORTSIDE_SCANNER_ADAPTER_TOKEN):"
                " the token Harbor sends to the adapter API"
            )
        return self

    @model_validator(mode="after")
    def _push_signer_is_complete(self) -> Settings:
        if self.push_signer == "command" and not self.push_signer_command:
            raise ValueError("push_signer command needs push_signer_command: the program and its arguments")
        if self.push_signer_command and (self.push_signer_public_key_file is None) == (
            not self.push_signer_public_key_command
        ):
            raise ValueError(
                "push_signer_command needs one of push_signer_public_key_file and push_signer_public_key_command:"
                " the public key its signatures verify with"
            )
        if self.push_signer == "plugin" and not self.push_signer_plugin:
            raise ValueError("push_signer plugin needs push_signer_plugin: the name of a portside.signers entry point")
        return self

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def base_url(self) -> str:
        return (self.external_url or f"http://{self.listen}").rstrip("/")

    @property
    def signing_key_path(self) -> Path:
        return self.token_key_file or self.data_dir / "token-key.pem"

    @property
    def token_certificate_path(self) -> Path:
        """A self-signed certificate of the token key, beside it (Notary's rootcertbundle)."""
        return self.signing_key_path.with_suffix(".crt")

    @property
    def gun_prefix(self) -> str:
        """What Notary GUNs of this registry's repositories start with (host:port)."""
        if self.notary_gun_prefix:
            return self.notary_gun_prefix.rstrip("/")
        return self.base_url.split("://", 1)[-1].split("/", 1)[0]

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            url = self.database_url
            # Plain postgresql:// (as libpq writes it) means the asyncio driver.
            for plain in ("postgresql://", "postgres://"):
                if url.startswith(plain):
                    return "postgresql+asyncpg://" + url[len(plain) :]
            return url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'portside.db').resolve()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if settings_cls.model_config.get("yaml_file"):
            sources.append(YamlConfigSettingsSource(settings_cls))
        return tuple(sources)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings; `overrides` (CLI flags) win over everything, `None` means unset."""
    settings_cls: type[Settings] = Settings
    if config_file is not None:
        if not config_file.is_file():
            raise FileNotFoundError(f"configuration file {config_file} does not exist")

        class FileSettings(Settings):
            model_config = SettingsConfigDict(**{**Settings.model_config, "yaml_file": config_file})

        settings_cls = FileSettings
    return settings_cls(**{k: v for k, v in overrides.items() if v is not None})


def hand_off(settings: Settings) -> None:
    """Make `settings` what `received_settings` returns in worker processes started after this."""
    os.environ[_HANDOFF_VARIABLE] = settings.model_dump_json()


def received_settings() -> Settings:
    handed = os.environ.get(_HANDOFF_VARIABLE)
    if handed is None:
        return load_settings()
    return Settings.model_validate_json(handed)
