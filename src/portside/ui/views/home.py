"""The front door: `/` opens the project list."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route


async def front(request: Request) -> Response:
    return RedirectResponse("/projects", status_code=303)


routes: list[BaseRoute] = [Route("/", front, methods=["GET", "HEAD"])]
