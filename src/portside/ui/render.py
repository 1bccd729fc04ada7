"""Templates to pages: the one Jinja2 environment (autoescaped), full pages and partials,
redirects that carry a notice to the next page, and the forms pages send.

A request from htmx that names a block of the page as its target (HX-Target) gets that
block alone: a list filtered as one types re-renders its rows, not the page. Everything
else gets the whole page, so every URL works in a browser without JavaScript.
"""

from __future__ import annotations

import email.policy
import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

import jinja2
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

import portside
from portside.http.assets import asset_url
from portside.ui.assets import ui_asset_url
from portside.ui.visitor import CSRF_FIELD, visitor

__all__ = ["page", "redirect", "read_form", "templates", "human_size", "when"]

_NOTICE_COOKIE = "notice"


def human_size(size: int | None) -> str:
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def when(moment: datetime | str | None) -> str:
    """A time as people read it, in UTC (the server's clock, the same for every visitor);
    an ISO 8601 text as the management layer describes times in is read first."""
    if moment is None:
        return "never"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso_time(moment: datetime | None) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _with_query(request: Request, **changes: Any) -> str:
    """This page's URL with some query parameters changed (None removes one)."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)
    return f"{request.url.path}?{urlencode(params)}" if params else request.url.path


@functools.cache
def templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("portside.ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["size"] = human_size
    environment.filters["when"] = when
    environment.filters["iso"] = iso_time
    environment.filters["urlpart"] = lambda text: quote(str(text), safe="")
    environment.globals["vendor_asset"] = asset_url
    environment.globals["ui_asset"] = ui_asset_url
    environment.globals["version"] = portside.__version__
    environment.globals["CSRF_FIELD"] = CSRF_FIELD
    return environment


async def page(
    request: Request, template: str, context: Mapping[str, Any] | None = None, status: int = 200
) -> Response:
    """Render `template` for this request: the whole page, or the block htmx asked for."""
    who = await visitor(request)
    compiled = templates().get_template(template)
    notice = request.cookies.get(_NOTICE_COOKIE)
    values = {
        "request": request,
        "visitor": who,
        "notice": unquote(notice) if notice else None,
        "with_query": functools.partial(_with_query, request),
        **(context or {}),
    }
    target = request.headers.get("hx-target")
    if request.headers.get("hx-request") and not request.headers.get("hx-boosted") and target in compiled.blocks:
        # A block alone runs without base.html, whose import gives every page `ui`.
        values["ui"] = templates().get_template("_macros.html").make_module(values)
        body = "".join(compiled.blocks[target](compiled.new_context(values)))
    else:
        body = compiled.render(values)
    response = HTMLResponse(body, status_code=status)
    if notice:
        response.delete_cookie(_NOTICE_COOKIE, path="/")
    return response


def redirect(url: str, notice: str | None = None) -> Response:
    """See other page (after a form succeeded), with a line telling what was done."""
    response = RedirectResponse(url, status_code=303)
    if notice:
        response.set_cookie(_NOTICE_COOKIE, quote(notice), max_age=60, path="/", httponly=True, samesite="lax")
    return response


async def read_form(request: Request) -> ImmutableMultiDict[str, str]:
    """A form, url-encoded or (one that uploads a file) multipart (its size and arrival
    time are bounded by http/bodies.py); every field as sent, repeated ones (checkboxes)
    kept, a file's field holding the file's text."""
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() == "multipart/form-data":
        return ImmutableMultiDict(_multipart_fields(content_type, body))
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        pairs = []
    return ImmutableMultiDict(pairs)


def _multipart_fields(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """The fields of a multipart/form-data body, read by the standard library's MIME parser
    (a form's parts are MIME parts under the boundary its Content-Type names). Text that is
    not UTF-8 is kept with replacement characters, for whoever reads it to refuse."""
    try:
        header = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
    except UnicodeEncodeError:
        return []
    message = BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
    if not message.is_multipart():
        return []
    fields = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        fields.append((name, data.decode("utf-8", errors="replace")))
    return fields
