"""Users: Harbor's `/users` semantics. Only system administrators create, list and delete
users; everyone reads and edits their own profile and password."""

from __future__ import annotations

import re
from dataclasses import dataclass

from portside.auth.authn import ROBOT_PREFIX
from portside.auth.passwords import hash_password, password_problem, verify_password
from portside.auth.principal import Principal
from portside.errors import BadRequest, Conflict, Forbidden, NotFound, PreconditionFailed, Unauthorized
from portside.meta.accounts import AuditStore, Page, User, UserStore, UserUpdate
from portside.meta.criteria import EVERYTHING, Match
from portside.meta.sessions import SessionStore
from portside.mgmt import limits
from portside.mgmt.guard import Guard
from portside.mgmt.paging import Listing, Paging

__all__ = ["UserService", "NewUser", "Profile"]

# Harbor refuses these characters in user names.
_BAD_NAME = re.compile(r"[,\"~#%$:\s]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_FIELDS = ("user_id", "username", "email", "realname", "comment", "sysadmin_flag", "creation_time", "update_time")
_LISTING = Listing.of(_FIELDS, _FIELDS, aliases={"UserID": "user_id", "Username": "username", "Email": "email"})


@dataclass(frozen=True, slots=True)
class NewUser:
    username: str
    password: str
    email: str | None = None
    realname: str = ""
    comment: str = ""


@dataclass(frozen=True, slots=True)
class Profile:
    email: str | None = None
    realname: str | None = None
    comment: str | None = None


def _check_profile(email: str | None, realname: str | None, comment: str | None) -> None:
    if email is not None:
        limits.check_text("email", email, limits.EMAIL)
        if email and not _EMAIL.match(email):
            raise BadRequest(f"invalid email {email!r}")
    if realname is not None:
        limits.check_text("realname", realname, limits.REALNAME)
    if comment is not None:
        limits.check_text("comment", comment, limits.COMMENT)


class UserService:
    def __init__(
        self,
        users: UserStore,
        audit: AuditStore,
        guard: Guard,
        sessions: SessionStore,
    ):
        self._users = users
        self._audit = audit
        self._guard = guard
        self._sessions = sessions

    async def _record(self, who: Principal, operation: str, resource: str) -> None:
        await self._audit.record(
            project_id=None, username=who.name, operation=operation, resource_type="user", resource=resource
        )

    async def get(self, who: Principal, user_id: int) -> User:
        self._guard.signed_in(who, "read users")
        if who.user_id != user_id:
            self._guard.system(who, "user", "read")
        user = await self._users.get_user(user_id)
        if user is None:
            raise NotFound(f"user {user_id} not found")
        return user

    async def current(self, who: Principal) -> User:
        if who.user is None:
            raise Unauthorized("sign in as a user") if not who.authenticated else Forbidden("robots have no profile")
        return await self.get(who, who.user.user_id)

    async def create(self, who: Principal, new: NewUser, *, sysadmin: bool = False) -> User:
        self._guard.system(who, "user", "create")
        return await self.add(new, sysadmin=sysadmin, by=who.name)

    async def add(self, new: NewUser, *, sysadmin: bool = False, by: str = "") -> User:
        """Create a user without a permission check (the CLI, run by the operator)."""
        name = limits.check_text("username", new.username.strip(), limits.USERNAME)
        if not name or _BAD_NAME.search(name) or name.startswith(ROBOT_PREFIX):
            raise BadRequest(f"invalid username {new.username!r}")
        if problem := password_problem(new.password):
            raise BadRequest(problem)
        _check_profile(new.email, new.realname, new.comment)
        if await self._users.get_user(name) is not None:
            raise Conflict(f"username {name} is already used")
        # The store raises Conflict naming what is taken (the name, raced since the check
        # above, or the email).
        user = await self._users.create_user(
            name,
            hash_password(new.password),
            email=new.email or None,
            realname=new.realname,
            comment=new.comment,
            sysadmin=sysadmin,
        )
        await self._audit.record(
            project_id=None, username=by or name, operation="create", resource_type="user", resource=name
        )
        return user

    async def list(self, who: Principal, q: str | None, sort: str | None, paging: Paging) -> Page[User]:
        self._guard.system(who, "user", "list")
        return await self._users.list_users(_LISTING.criteria(q, sort), paging.offset, paging.limit)

    async def search(self, who: Principal, username: str, paging: Paging) -> Page[User]:
        """Harbor's /users/search: users whose name contains `username`."""
        self._guard.signed_in(who, "search users")
        if who.user is None:
            self._guard.system(who, "user", "list")
        criteria = EVERYTHING.where("username", Match("fuzzy", (username,)))
        return await self._users.list_users(criteria, paging.offset, paging.limit)

    async def update_profile(self, who: Principal, user_id: int, profile: Profile) -> None:
        user = await self.get(who, user_id)
        if who.user_id != user_id:
            self._guard.system(who, "user", "update")
        _check_profile(profile.email, profile.realname, profile.comment)
        try:
            await self._users.update_user(
                user_id, UserUpdate(email=profile.email, realname=profile.realname, comment=profile.comment)
            )
        except Exception as exc:
            raise Conflict(f"email {profile.email} is already used") from exc
        await self._record(who, "update", user.username)

    async def delete(self, who: Principal, user_id: int) -> None:
        self._guard.system(who, "user", "delete")
        if who.user_id == user_id:
            raise Forbidden("you cannot delete yourself")
        user = await self.get(who, user_id)
        await self._delete(user)
        await self._record(who, "delete", user.username)

    async def _delete(self, user: User) -> None:
        try:
            await self._users.delete_user(user.user_id)
        except Exception as exc:  # the store's foreign key: projects keep their owner
            raise PreconditionFailed(f"{user.username} owns projects; delete or hand them over first") from exc

    async def change_password(self, who: Principal, user_id: int, old: str | None, new: str) -> None:
        self._guard.signed_in(who, "change passwords")
        user = await self.get(who, user_id)
        if who.user_id == user_id or not who.sysadmin:
            # Even an administrator proves their own old password.
            if not old or not verify_password(user.password_hash, old):
                raise Forbidden("the old password is incorrect")
            if old == new:
                raise BadRequest("the new password must differ from the old one")
        await self.set_password(user, new)
        await self._record(who, "update", user.username)

    async def set_password(self, user: User, new: str) -> None:
        """Set a password without a permission check (the CLI); ends the user's web sessions."""
        if problem := password_problem(new):
            raise BadRequest(problem)
        await self._users.update_user(user.user_id, UserUpdate(password_hash=hash_password(new)))
        await self._sessions.delete_user_sessions(user.user_id)

    async def reset_two_factor(self, user: User) -> None:
        """Turn two-factor sign-in off without a code, for a user who lost the device (the
        CLI, run by the operator)."""
        await self._users.update_user(user.user_id, UserUpdate(clear_totp=True))
        await self._audit.record(
            project_id=None, username="cli", operation="update", resource_type="user", resource=user.username
        )

    async def set_sysadmin(self, who: Principal, user_id: int, flag: bool) -> None:
        self._guard.system(who, "user", "update")
        if who.user_id == user_id:
            raise Forbidden("you cannot change your own administrator flag")
        user = await self.get(who, user_id)
        await self._users.update_user(user_id, UserUpdate(sysadmin=flag))
        await self._record(who, "update", user.username)

    async def find(self, key: int | str) -> User:
        user = await self._users.get_user(key)
        if user is None:
            raise NotFound(f"user {key} not found")
        return user

    async def remove(self, user: User) -> None:
        """Delete without a permission check (the CLI)."""
        await self._delete(user)
        await self._audit.record(
            project_id=None, username="cli", operation="delete", resource_type="user", resource=user.username
        )

    async def page(self, name_contains: str | None, paging: Paging) -> Page[User]:
        criteria = EVERYTHING.where("username", Match("fuzzy", (name_contains,))) if name_contains else EVERYTHING
        return await self._users.list_users(criteria, paging.offset, paging.limit)
