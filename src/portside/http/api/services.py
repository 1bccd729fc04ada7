"""The management services one app serves, handed over by `wiring`."""

from __future__ import annotations

from dataclasses import dataclass

from portside.auth.authn import Authenticator
from portside.mgmt.artifacts import ArtifactService, RepositoryService
from portside.mgmt.audit import AuditService
from portside.mgmt.members import MemberService
from portside.mgmt.projects import ProjectService
from portside.mgmt.quotas import QuotaService
from portside.mgmt.robots import RobotService
from portside.mgmt.sessions import SessionService
from portside.mgmt.system import SystemJobService
from portside.mgmt.totp import TotpService
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
    secure_cookies: bool = False
    gc: SystemJobService | None = None  # /system/gc
    scrub: SystemJobService | None = None  # /system/scrub
