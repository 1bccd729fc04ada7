"""What the live-server page tests share: unique names, the management API as a set-up
tool, and the CSRF token a page's forms carry."""

from __future__ import annotations

import html
import re
import uuid
from typing import Any

import httpx

from tests.servers import ADMIN_PASSWORD, Portside

API = "/api/v2.0"
ADMIN = ("admin", ADMIN_PASSWORD)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def api(server: Portside, method: str, path: str, who: tuple[str, str] = ADMIN, **kwargs: Any) -> httpx.Response:
    with httpx.Client(base_url=server.url, auth=who, timeout=60) as client:
        return client.request(method, API + path, **kwargs)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no CSRF field on the page"
    return html.unescape(found.group(1))
