"""/users: Harbor's user resources, and /users/current/totp (Portside's two-factor setup)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from portside.http.api.context import (
    Caller,
    Id,
    Pages,
    client_address,
    from_session,
    iso,
    many,
    paged,
    services,
    without_none,
)
from portside.meta.accounts import User
from portside.mgmt import limits
from portside.mgmt.totp import totp_enabled
from portside.mgmt.users import NewUser, Profile

__all__ = ["router"]

router = APIRouter(tags=["user"])


class UserCreationReq(BaseModel):
    username: str = Field(max_length=limits.USERNAME)
    password: str
    email: str | None = Field(None, max_length=limits.EMAIL)
    realname: str = Field("", max_length=limits.REALNAME)
    comment: str = Field("", max_length=limits.COMMENT)


class UserProfile(BaseModel):
    email: str | None = Field(None, max_length=limits.EMAIL)
    realname: str | None = Field(None, max_length=limits.REALNAME)
    comment: str | None = Field(None, max_length=limits.COMMENT)


class PasswordReq(BaseModel):
    old_password: str | None = None
    new_password: str


class UserSysAdminFlag(BaseModel):
    sysadmin_flag: bool


class TotpCode(BaseModel):
    code: str


def user_resp(user: User) -> dict[str, Any]:
    return without_none(
        {
            "user_id": user.user_id,
            "username": user.username,
            "email": user.email or "",
            "realname": user.realname,
            "comment": user.comment,
            "sysadmin_flag": user.sysadmin,
            "admin_role_in_auth": False,
            "creation_time": iso(user.creation_time),
            "update_time": iso(user.update_time),
        }
    )


@router.post("/users", status_code=201, summary="Create a user (system administrators)", response_class=Response)
async def create_user(request: Request, response: Response, who: Caller, body: UserCreationReq) -> None:
    user = await services(request).users.create(
        who, NewUser(body.username, body.password, body.email, body.realname, body.comment)
    )
    response.headers["Location"] = f"{request.url.path}/{user.user_id}"


@router.get("/users", summary="List users (system administrators)")
async def list_users(
    request: Request, response: Response, who: Caller, paging: Pages, q: str | None = None, sort: str | None = None
) -> list[dict[str, Any]]:
    page = await services(request).users.list(who, q, sort, paging)
    paged(request, response, page, paging)
    return [user_resp(u) for u in page.items]


@router.get("/users/search", summary="Find users by name (any signed-in user)")
async def search_users(
    request: Request, response: Response, who: Caller, paging: Pages, username: Annotated[str, Query()]
) -> list[dict[str, Any]]:
    page = await services(request).users.search(who, username, paging)
    paged(request, response, page, paging)
    return many([{"user_id": u.user_id, "username": u.username} for u in page.items])


@router.get("/users/current", summary="The signed-in user")
async def current_user(request: Request, who: Caller) -> dict[str, Any]:
    return user_resp(await services(request).users.current(who))


@router.get("/users/current/permissions", summary="What the caller may do in a scope (/project/<id>, /system)")
async def current_permissions(
    request: Request, who: Caller, scope: str | None = None, relative: bool = False
) -> list[dict[str, str]]:
    held = await services(request).permissions.of(who, scope, relative)
    return [{"resource": h.resource, "action": h.action} for h in held]


@router.post(
    "/users/current/totp",
    summary="Start enabling TOTP for web sign-in; returns the secret and an otpauth:// URI",
    description="Confirm with PUT and a current code. Registry clients and robots are not affected by TOTP.",
)
async def start_totp(request: Request, who: Caller) -> dict[str, str]:
    enrollment = await services(request).totp.start(who)
    return {"secret": enrollment.secret, "uri": enrollment.uri}


@router.put(
    "/users/current/totp",
    summary="Confirm TOTP with a current code; /c/login then asks for it",
    response_class=Response,
)
async def confirm_totp(request: Request, who: Caller, body: TotpCode) -> None:
    await services(request).totp.confirm(who, body.code)


@router.delete(
    "/users/current/totp",
    summary="Disable TOTP for web sign-in",
    description="Takes a current code, from a signed-in web session (not Basic credentials).",
    response_class=Response,
)
async def disable_totp(request: Request, who: Caller, body: TotpCode | None = None) -> None:
    await services(request).totp.disable(
        who, body.code if body else None, from_session=from_session(request), client=client_address(request)
    )


@router.get("/users/current/totp", summary="Whether TOTP is enabled for the signed-in user")
async def totp_status(request: Request, who: Caller) -> dict[str, bool]:
    return {"enabled": totp_enabled(await services(request).users.current(who))}


@router.get("/users/{user_id}", summary="A user (themselves, or system administrators)")
async def get_user(request: Request, who: Caller, user_id: Id) -> dict[str, Any]:
    return user_resp(await services(request).users.get(who, user_id))


@router.put("/users/{user_id}", summary="Update a user's profile", response_class=Response)
async def update_user(request: Request, who: Caller, user_id: Id, body: UserProfile) -> None:
    await services(request).users.update_profile(who, user_id, Profile(body.email, body.realname, body.comment))


@router.delete("/users/{user_id}", summary="Delete a user (system administrators)", response_class=Response)
async def delete_user(request: Request, who: Caller, user_id: Id) -> None:
    await services(request).users.delete(who, user_id)


@router.put(
    "/users/{user_id}/password", summary="Change a password (the old one is required unless an admin sets another's)"
)
async def change_password(request: Request, who: Caller, user_id: Id, body: PasswordReq) -> None:
    await services(request).users.change_password(who, user_id, body.old_password, body.new_password)


@router.put("/users/{user_id}/sysadmin", summary="Grant or revoke system administrator", response_class=Response)
async def set_sysadmin(request: Request, who: Caller, user_id: Id, body: UserSysAdminFlag) -> None:
    await services(request).users.set_sysadmin(who, user_id, body.sysadmin_flag)
