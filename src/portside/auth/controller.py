"""The registry's access controller: Docker token auth and Basic auth in front of `/v2`.

A request carries a Bearer token, Basic credentials (checked like a login), or nothing
(anonymous). What a principal may do comes from `Policy`. A token carries what was granted
when it was issued, and is not trusted beyond what is still true: it is checked again
against the accounts, projects and memberships whenever any of them changed since it was
last checked (the accounts' generation, read on every request: a memory read on one
machine, a Redis GET across instances). Between changes a check costs a dictionary lookup.
A token whose account was deleted, disabled or given new credentials is refused; one
whose project was deleted, or made again under the same name, no longer reaches it; an
action whose permission was taken away since is dropped.
"""

from __future__ import annotations

import base64
import binascii
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace

from portside.auth.access import Access, Credentials, Grant
from portside.auth.authn import Authenticator
from portside.auth.policy import Policy, robot_active
from portside.auth.principal import ANONYMOUS, Principal
from portside.auth.tokens import Claims, TokenService
from portside.errors import Denied, Unauthorized
from portside.meta.accounts import Project, ProjectStore
from portside.meta.stores import ChangeCounter

__all__ = ["AccessController", "project_of"]

# Registry actions → Harbor permissions in the repository's project.
_PERMISSION = {"pull": ("repository", "pull"), "push": ("repository", "push"), "delete": ("artifact", "delete")}


def project_of(repository: str) -> str:
    """A repository's project is its first path component."""
    return repository.split("/", 1)[0]


class AccessController:
    def __init__(
        self,
        authenticator: Authenticator,
        tokens: TokenService,
        policy: Policy,
        projects: ProjectStore,
        realm: str,
        admin_creates_projects: bool = False,
        account_changes: ChangeCounter | None = None,
        rechecked_tokens: int = 4096,
    ):
        self._authn = authenticator
        self.tokens = tokens
        self._policy = policy
        self._projects = projects
        self.realm = realm
        self._admin_creates_projects = admin_creates_projects
        self._account_changes = account_changes
        self._rechecked = _RecheckedTokens(rechecked_tokens)

    # --- what a principal may do ------------------------------------------------------

    async def grant(self, who: Principal, wanted: Sequence[Access], *, creating: bool = True) -> Grant:
        """The subset of `wanted` that `who` may do (the token endpoint issues exactly this),
        with the ids of the projects it is in. `creating`: a push may create its project
        (`admin_creates_projects`)."""
        granted: list[Access] = []
        projects: dict[str, Project | None] = {}
        # Scopes come split by action; a push anywhere in the project may create it.
        pushed = {project_of(a.name) for a in wanted if a.resource_type == "repository" and a.action in ("push", "*")}
        for access in wanted:
            if access.resource_type == "registry":
                if access.name == "catalog" and who.authenticated:
                    granted.append(access)
                continue
            if access.resource_type != "repository":
                continue
            actions = ("pull", "push", "delete") if access.action == "*" else (access.action,)
            name = project_of(access.name)
            if name not in projects:
                projects[name] = await self._project(name, who, creating=creating and name in pushed)
            project = projects[name]
            if project is None:
                continue
            for action in actions:
                permission = _PERMISSION.get(action)
                if permission and await self._policy.permits(who, project, *permission):
                    granted.append(Access(access.resource_type, access.name, action))
        ids = {
            project.name: project.project_id
            for a in granted
            if a.resource_type == "repository" and (project := projects.get(project_of(a.name))) is not None
        }
        return Grant(who.name if who.authenticated else None, tuple(granted), None, ids)

    async def _project(self, name: str, who: Principal, creating: bool) -> Project | None:
        project = await self._projects.get_project(name)
        if project is None and creating and who.sysadmin and self._admin_creates_projects and who.user:
            try:
                project = await self._projects.create_project(name, who.user.user_id, {"public": "false"})
            except Exception:  # created meanwhile by a concurrent push
                project = await self._projects.get_project(name)
        return project

    async def visible_projects(self, who: Principal) -> frozenset[str] | None:
        if who.sysadmin:
            return None
        if who.robot is not None:
            namespaces = {
                p.namespace
                for p in who.robot.permissions
                if p.kind == "project" and any(r == "repository" for r, _ in p.access)
            }
            if "*" in namespaces and robot_active(who.robot):
                return None
            return frozenset(namespaces) if robot_active(who.robot) else frozenset()
        page = await self._projects.list_projects(
            name_contains=None,
            exact_name=None,
            public=None,
            visible_to=who.user_id if who.user else -1,
            member_of=None,
            offset=0,
            limit=1_000_000,
        )
        return frozenset(p.name for p in page.items)

    # --- who is asking ---------------------------------------------------------------

    async def principal_from_basic(self, value: str, client: str, audit: bool = False) -> Principal:
        """Basic credentials on a registry request (no audit: a client sends them on every
        request), or at the token endpoint (a login: audited)."""
        try:
            username, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("malformed Basic credentials") from None
        if not sep:
            raise Unauthorized("malformed Basic credentials")
        return await self._authn.login(username, password, client, audit=audit)

    async def authenticate(self, username: str, password: str, client: str) -> Principal:
        return await self._authn.login(username, password, client, audit=True)

    async def account_of(self, claims: Claims) -> Principal:
        """The account a token was issued to, as it is now; raises `Unauthorized` when it was
        deleted or disabled, or its credentials changed, since (ids are never reused, so a
        new account of the same name is another account)."""
        if claims.subject_kind == "anonymous":
            return ANONYMOUS
        found = None
        if claims.subject_id is not None:
            found = await self._authn.principal(claims.subject_kind, claims.subject_id)
        if found is None or found.name != claims.subject or found.generation != claims.generation:
            raise Unauthorized(
                f"the token of {claims.subject} is no longer valid: the account was deleted or disabled,"
                " or its password or secret changed; sign in again"
            )
        return found

    async def _current(self, token: str, claims: Claims) -> tuple[Claims, int | None]:
        """`claims` narrowed to what is still true, cached until the accounts change; and the
        accounts' generation they were checked at."""
        generation = await self._account_changes.current() if self._account_changes is not None else None
        if generation is not None:
            known = self._rechecked.get(token, generation)
            if known is not None:
                return known, generation
        who = await self.account_of(claims)
        now = await self.grant(who, claims.access, creating=False)
        ids = now.project_ids or {}

        def still(a: Access) -> bool:
            if a not in now.granted:
                return False
            # The project the token was issued for, not another that took its name since.
            return a.resource_type != "repository" or ids.get(project_of(a.name)) == claims.projects.get(
                project_of(a.name)
            )

        current = replace(claims, access=tuple(a for a in claims.access if still(a)))
        if generation is not None:
            self._rechecked.put(token, generation, current)
        return current, generation

    # --- the /v2 gate ----------------------------------------------------------------

    def challenge(self, wanted: Sequence[Access], message: str, error: str | None = None) -> Unauthorized:
        parts = [f'realm="{self.realm}"', f'service="{self.tokens.service}"']
        scopes = _scopes(wanted)
        if scopes:
            parts.append(f'scope="{scopes}"')
        if error:
            parts.append(f'error="{error}"')
        return Unauthorized(message, headers={"WWW-Authenticate": "Bearer " + ",".join(parts)})

    async def authorize(self, credentials: Credentials, wanted: Sequence[Access]) -> Grant:
        scheme = credentials.scheme
        if scheme == "bearer" and credentials.value:
            try:
                claims, generation = await self._current(credentials.value, self.tokens.verify(credentials.value))
            except Unauthorized as exc:
                raise self.challenge(wanted, exc.text, "invalid_token") from None
            missing = [a for a in wanted if not claims.allows(a)]
            if missing:
                if claims.subject_kind != "anonymous":
                    await self._deny_unseen_project(await self.account_of(claims), missing)
                raise self.challenge(
                    wanted, f"the token does not grant {', '.join(a.scope() for a in missing)}", "insufficient_scope"
                )
            visible = None
            if any(a.resource_type == "registry" for a in wanted):
                visible = await self.visible_projects(await self.account_of(claims))
            return Grant(claims.subject, tuple(wanted), visible, claims.projects, generation)
        if scheme == "basic" and credentials.value:
            who = await self.principal_from_basic(credentials.value, credentials.client)
        elif wanted and all(a.action == "pull" for a in wanted):
            who = ANONYMOUS  # anonymous pulls of public projects need no token round trip
        else:
            raise self.challenge(wanted, "authentication required")
        grant = await self.grant(who, wanted)
        missing = [a for a in wanted if a not in grant.granted]
        if missing:
            if not who.authenticated:
                raise self.challenge(wanted, "authentication required")
            await self._deny_unseen_project(who, missing)
            raise Denied(
                f"{who.name} may not {', '.join(a.scope() for a in missing)}",
                detail=[{"Type": a.resource_type, "Name": a.name, "Action": a.action} for a in missing],
            )
        visible = await self.visible_projects(who) if any(a.resource_type == "registry" for a in wanted) else None
        return replace(grant, visible_projects=visible)

    async def _deny_unseen_project(self, who: Principal, missing: Sequence[Access]) -> None:
        """A signed-in caller refused because the project does not exist, or because it may
        not see the project at all, is told so in the same words either way: a private
        project's name must not be told apart from a free one."""
        for a in missing:
            if a.resource_type == "repository":
                name = project_of(a.name)
                project = await self._projects.get_project(name)
                if project is None or not await self._policy.sees(who, project):
                    raise Denied(
                        f"project {name} does not exist, or {who.name} may not see it",
                        detail=[{"Type": "project", "Name": name, "Action": a.action}],
                    )


def _scopes(wanted: Sequence[Access]) -> str:
    grouped: dict[tuple[str, str], list[str]] = {}
    for a in wanted:
        grouped.setdefault((a.resource_type, a.name), []).append(a.action)
    return " ".join(f"{t}:{n}:{','.join(actions)}" for (t, n), actions in grouped.items())


class _RecheckedTokens:
    """Tokens as last checked against the accounts, with the accounts' generation then:
    a bounded LRU keyed by the token's whole text, answering only at that same generation."""

    def __init__(self, capacity: int):
        self._capacity = capacity
        self._entries: OrderedDict[str, tuple[int, Claims]] = OrderedDict()

    def get(self, token: str, generation: int) -> Claims | None:
        entry = self._entries.get(token)
        if entry is None or entry[0] != generation:
            return None
        self._entries.move_to_end(token)
        return entry[1]

    def put(self, token: str, generation: int, claims: Claims) -> None:
        if self._capacity <= 0:
            return
        self._entries[token] = (generation, claims)
        self._entries.move_to_end(token)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
