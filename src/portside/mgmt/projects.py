"""Projects: Harbor's `/projects`. Any signed-in user may create one and becomes its
projectAdmin; callers see public projects and those they belong to. A new project gets
its storage quota (`mgmt.quotas`), and its summary counts what the caller may see."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from portside.auth.principal import Principal
from portside.errors import BadRequest, Conflict, Forbidden, PreconditionFailed, Unauthorized
from portside.meta.accounts import AuditStore, Page, Project, ProjectStore
from portside.meta.criteria import Match
from portside.meta.quotas import Quota
from portside.mgmt import limits
from portside.mgmt.cve_allowlist import CveAllowlistService, clean_allowlist
from portside.mgmt.guard import Guard
from portside.mgmt.paging import Listing, Paging
from portside.mgmt.proxy_metadata import REGISTRY_ID, check_cache_metadata
from portside.mgmt.pull_policy import signature_kinds
from portside.mgmt.quotas import QuotaService
from portside.mgmt.signing_keys import KINDS as SIGNER_KINDS

__all__ = ["SEVERITIES", "ProjectService", "ListedProject", "ProjectSummary", "check_project_name"]

# A project's CVE allowlist as the API gives it: the CVE ids and when the list expires.
Allowlist = tuple[Sequence[str], int | None]

_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_BOOLEAN_METADATA = (
    "public",
    "enable_content_trust",
    "enable_content_trust_cosign",
    "prevent_vul",
    "auto_scan",
    "auto_sbom_generation",
    "reuse_sys_cve_allowlist",
    "sign_on_push",
)
# Harbor's `severity`: the lowest severity the vulnerability pull policy blocks.
SEVERITIES = ("none", "low", "medium", "high", "critical")
_ALL = 1_000_000
_FIELDS = ("project_id", "name", "owner_id", "owner", "public", "creation_time", "update_time")
_LISTING = Listing.of(
    _FIELDS,
    ("project_id", "name", "owner_id", "creation_time", "update_time"),
    aliases={"ProjectID": "project_id", "Name": "name", "OwnerID": "owner_id"},
)


def check_project_name(name: str) -> str:
    limits.check_text("project_name", name, limits.PROJECT_NAME)
    if not name or not _NAME.match(name):
        raise BadRequest(f"invalid project name {name!r}: lowercase letters, digits and ._- between them")
    return name


def _clean_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    if len(metadata) > limits.METADATA_ENTRIES:
        raise BadRequest(f"metadata may have at most {limits.METADATA_ENTRIES} entries (it has {len(metadata)})")
    out = {}
    for key, value in metadata.items():
        limits.check_text("metadata key", key, limits.METADATA_KEY)
        text = str(value).lower() if isinstance(value, bool) else str(value)
        limits.check_text(f"metadata.{key}", text, limits.METADATA_VALUE)
        if key == REGISTRY_ID:
            raise BadRequest("registry_id is given beside the metadata, when a project is created")
        if (wrong := check_cache_metadata(key, text)) is not None:
            raise BadRequest(wrong)
        if key in _BOOLEAN_METADATA and text not in ("true", "false"):
            raise BadRequest(f'metadata.{key} must be "true" or "false"')
        if key == "severity":
            text = text.lower()
            if text not in SEVERITIES:
                raise BadRequest(f"metadata.severity must be one of {', '.join(SEVERITIES)}")
        if key == "sign_on_push_signer" and text and text not in SIGNER_KINDS:  # "": the default
            raise BadRequest(f"metadata.sign_on_push_signer must be one of {', '.join(SIGNER_KINDS)}")
        if key == "require_signature" and text:
            text = text.lower()
            try:
                signature_kinds(text)
            except ValueError as error:
                raise BadRequest(f"metadata.require_signature: {error} (a comma-separated list)") from None
        out[key] = text
    return out


@dataclass(frozen=True, slots=True)
class ListedProject:
    project: Project
    role_id: int | None  # the caller's role, for Harbor's current_user_role_id(s)


@dataclass(frozen=True, slots=True)
class ProjectSummary:
    project: Project
    members_by_role: Mapping[int, int] | None  # role id → members; None: the caller may not list them
    quota: Quota | None  # None: the caller may not read it


class ProjectService:
    def __init__(
        self,
        projects: ProjectStore,
        audit: AuditStore,
        guard: Guard,
        quotas: QuotaService | None = None,
        allowlists: CveAllowlistService | None = None,
    ):
        self._projects = projects
        self._audit = audit
        self._guard = guard
        self._quotas = quotas
        self.allowlists = allowlists
        # The name of a registry (/registries) by id, None when there is none; set when
        # registries exist here, so that proxy projects can be made.
        self.registry_name: Callable[[int], Awaitable[str | None]] | None = None

    def _allowlist(self, allowlist: Allowlist | None) -> Allowlist | None:
        """`allowlist` checked (before anything is written), or None when none was given."""
        if allowlist is None:
            return None
        if self.allowlists is None:
            raise BadRequest("CVE allowlists are not available here")
        return clean_allowlist(*allowlist)

    async def _record(self, who: Principal, project: Project, operation: str) -> None:
        await self._audit.record(
            project_id=project.project_id,
            username=who.name,
            operation=operation,
            resource_type="project",
            resource=project.name,
        )

    async def create(
        self,
        who: Principal,
        name: str,
        public: bool | None,
        metadata: Mapping[str, str],
        storage_limit: int | None = None,
        allowlist: Allowlist | None = None,
        registry_id: int | None = None,
    ) -> Project:
        """`registry_id`: the project is a proxy (pull-through cache) of that registry, which
        only a system administrator may make (Harbor's rule)."""
        if who.user is None:
            if not who.authenticated:
                raise Unauthorized("sign in to create projects")
            raise Forbidden("robots cannot create projects")
        if self._quotas is not None:
            self._quotas.may_choose(who, storage_limit)
        checked = self._allowlist(allowlist)
        if registry_id is not None:
            metadata = await self._proxy_metadata(who, metadata, registry_id)
        project = await self.add(
            name,
            who.user.user_id,
            public,
            metadata,
            by=who.name,
            storage_limit=storage_limit,
            proxied=registry_id is not None,
        )
        if checked is not None and checked[0] and self.allowlists is not None:
            await self.allowlists.set_project(project, *checked)
        return project

    async def add(
        self,
        name: str,
        owner_id: int,
        public: bool | None,
        metadata: Mapping[str, str],
        *,
        by: str,
        storage_limit: int | None = None,
        proxied: bool = False,
    ) -> Project:
        """Create without a permission check (the CLI); `storage_limit` None: the default.
        `proxied`: `metadata` may hold the `registry_id` `create` checked."""
        check_project_name(name)
        if self._quotas is None:
            if storage_limit is not None:
                raise BadRequest("storage quotas are not available here")
            limit = None
        else:
            limit = self._quotas.initial_limit(storage_limit)
        registry = metadata.get(REGISTRY_ID) if proxied else None
        clean = _clean_metadata({k: v for k, v in metadata.items() if k != REGISTRY_ID})
        if registry is not None:
            clean[REGISTRY_ID] = registry
        if public is not None and "public" not in clean:
            clean["public"] = "true" if public else "false"
        clean.setdefault("public", "false")
        if await self._projects.get_project(name) is not None:
            raise Conflict(f"project {name} already exists")
        project = await self._projects.create_project(name, owner_id, clean)
        if self._quotas is not None and limit is not None:
            await self._quotas.start(project, limit)
        await self._audit.record(
            project_id=project.project_id, username=by, operation="create", resource_type="project", resource=name
        )
        return project

    async def _proxy_metadata(self, who: Principal, metadata: Mapping[str, str], registry_id: int) -> dict[str, str]:
        if not who.sysadmin:
            raise Forbidden("only system administrators may create proxy cache projects")
        if self.registry_name is None or await self.registry_name(registry_id) is None:
            raise BadRequest(f"registry_id: registry {registry_id} not found")
        # Content trust is the upstream's business in a proxy project, as in Harbor: the
        # signature policies (require_signature) still apply to what is cached.
        kept = {k: v for k, v in metadata.items() if k not in ("enable_content_trust", "enable_content_trust_cosign")}
        return {**kept, REGISTRY_ID: str(registry_id)}

    async def proxying(self, registry_id: int) -> list[Project]:
        """The proxy projects of a registry (which keep it from being deleted)."""
        found: list[Project] = []
        number = 1
        while True:
            page = await self.page(Paging(number, 100))
            found += [p for p in page.items if p.metadata.get(REGISTRY_ID) == str(registry_id)]
            if number * 100 >= page.total or not page.items:
                return found
            number += 1

    async def exists(self, who: Principal, name: str) -> bool:
        """Whether a project of that name exists, as far as `who` may know."""
        return await self._guard.seen(who, name) is not None

    async def get(self, who: Principal, key: int | str) -> ListedProject:
        project = await self._guard.project_for(who, key, "project", "read")
        return ListedProject(project, await self._guard.policy.role(who, project))

    async def summary(self, who: Principal, key: int | str) -> ProjectSummary:
        """Harbor's project summary: member counts and quota only for callers who may see them."""
        project = await self._guard.project_for(who, key, "project", "read")
        members = None
        if await self._guard.policy.permits(who, project, "member", "list"):
            found = await self._projects.list_members(project.project_id, None, 0, _ALL)
            members = Counter(m.role_id for m in found.items)
        quota = await self._quotas.of_project(who, project) if self._quotas is not None else None
        return ProjectSummary(project, members, quota)

    async def list(
        self,
        who: Principal,
        *,
        name: str | None,
        public: bool | None,
        owner: str | None,
        q: str | None,
        paging: Paging,
        sort: str | None = None,
    ) -> Page[ListedProject]:
        """Harbor's project list: `name` (contains), `public`, `owner` and `q`, all matched in
        the store, among the projects the caller may see."""
        criteria = _LISTING.criteria(q, sort)
        if name:
            criteria = criteria.where("name", Match("fuzzy", (name,)))
        if public is not None:
            criteria = criteria.where("public", Match("exact", (str(public).lower(),)))
        if owner:
            criteria = criteria.where("owner", Match("exact", (owner,)))
        if who.robot is not None:
            # Robots see the projects their permissions name.
            allowed = await self._guard.visible(who, "project", "read")
            if allowed is not None:
                criteria = criteria.where("name", Match("any", tuple(p.name for p in allowed)))
        found = await self._projects.list_projects(
            name_contains=None,
            exact_name=None,
            public=None,
            visible_to=None if who.sysadmin or who.robot is not None else (who.user_id if who.user else -1),
            member_of=None,
            offset=paging.offset,
            limit=paging.limit,
            criteria=criteria,
        )
        roles = await self._projects.roles_of_user(who.user.user_id) if who.user else {}
        return Page([ListedProject(p, roles.get(p.name)) for p in found.items], found.total)

    async def update(
        self,
        who: Principal,
        key: int | str,
        public: bool | None,
        metadata: Mapping[str, str],
        allowlist: Allowlist | None = None,
    ) -> None:
        """Change `metadata` (the keys given; others stay) and, when given, replace the
        project's CVE allowlist."""
        project = await self._guard.project_for(who, key, "project", "update")
        clean = _clean_metadata(metadata)
        checked = self._allowlist(allowlist)
        if public is not None and "public" not in clean:
            clean["public"] = "true" if public else "false"
        if clean:
            await self._projects.update_metadata(project.project_id, clean)
        if checked is not None and self.allowlists is not None:
            await self.allowlists.set_project(project, *checked)
        await self._record(who, project, "update")

    async def delete(self, who: Principal, key: int | str) -> None:
        project = await self._guard.project_for(who, key, "project", "delete")
        if project.repo_count:
            raise PreconditionFailed(
                f"project {project.name} still has {project.repo_count} repositories; delete them first"
            )
        await self._projects.delete_project(project.project_id)
        await self._record(who, project, "delete")

    async def find(self, key: int | str) -> Project:
        """A project by id or name, without a permission check (the CLI)."""
        return await self._guard.project(key)

    async def page(self, paging: Paging) -> Page[Project]:
        """Every project, for the CLI."""
        return await self._projects.list_projects(
            name_contains=None,
            exact_name=None,
            public=None,
            visible_to=None,
            member_of=None,
            offset=paging.offset,
            limit=paging.limit,
        )
