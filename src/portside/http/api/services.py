"""The management services one app serves, handed over by `wiring`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from portside.auth.authn import Authenticator
from portside.mgmt.artifacts import ArtifactService, RepositoryService
from portside.mgmt.audit import AuditService
from portside.mgmt.cve_allowlist import CveAllowlistService
from portside.mgmt.cve_export import CveExportService
from portside.mgmt.members import MemberService
from portside.mgmt.permissions import PermissionService
from portside.mgmt.preheat import PreheatService
from portside.mgmt.projects import ProjectService
from portside.mgmt.quotas import QuotaService
from portside.mgmt.registries import RegistryService
from portside.mgmt.registry_failover import FailoverService
from portside.mgmt.replication import ReplicationService
from portside.mgmt.robots import RobotService
from portside.mgmt.scanning import ScanApiService
from portside.mgmt.search import SearchService
from portside.mgmt.sessions import SessionService
from portside.mgmt.signatures import SignatureService
from portside.mgmt.statistics import StatisticsService
from portside.mgmt.system import SystemJobService
from portside.mgmt.systeminfo import SystemInfoService
from portside.mgmt.totp import TotpService
from portside.mgmt.trust_policy import TrustPolicyService
from portside.mgmt.users import UserService

__all__ = ["ManagementServices"]


@dataclass(frozen=True)
class ManagementServices:
    authenticator: Authenticator
    users: UserService
    totp: TotpService
    projects: ProjectService
    quotas: QuotaService
    members: MemberService
    robots: RobotService
    repositories: RepositoryService
    artifacts: ArtifactService
    audit: AuditService
    sessions: SessionService
    systeminfo: SystemInfoService
    statistics: StatisticsService
    search: SearchService
    permissions: PermissionService
    # The readiness checks of /readyz (Services.readiness_checks), which /health reports.
    readiness_checks: dict[str, Callable[[], Awaitable[str | None]]] = field(default_factory=dict)
    # Components /health reports whose failure is a warning, not the registry's: a missing or
    # stale vulnerability database stops no push or pull.
    advisory_components: frozenset[str] = frozenset()
    secure_cookies: bool = False
    gc: SystemJobService | None = None  # /system/gc
    scrub: SystemJobService | None = None  # /system/scrub
    scans: ScanApiService | None = None  # scanning (None: not offered)
    scan_all: SystemJobService | None = None  # /system/scanAll
    cve_exports: CveExportService | None = None  # /export/cve (with scanning)
    allowlists: CveAllowlistService | None = None  # /system/CVEAllowlist, projects' cve_allowlist
    trust: TrustPolicyService | None = None  # /projects/{p}/trust, /system/trust
    signatures: SignatureService | None = None  # artifacts' signatures and accessories
    registries: RegistryService | None = None  # /registries, /replication/adapters
    replication: ReplicationService | None = None  # /replication/policies, /replication/executions
    failover: FailoverService | None = None  # /registries/{id}/failover_urls
    preheat: PreheatService | None = None  # /p2p/preheat, /projects/{p}/preheat
