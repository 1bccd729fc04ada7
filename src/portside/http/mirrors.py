"""Daemons that expect a mirror: their requests name no proxy project, so this names it.

- containerd (`hosts.toml`) adds `?ns=<upstream host>` to each request: `mirror_namespaces`
  maps that host (`docker.io`) to the proxy project that caches it.
- docker's `registry-mirrors` sends the bare upstream name (`library/busybox`) to the mirror's
  URL, whose host says which upstream it mirrors: `mirror_hosts` maps the host clients use for
  the mirror (`hub-mirror.example:5000`) to the proxy project.
- podman's `[[registry.mirror]]` needs nothing here: its `location` may carry the project
  (`portside.example/hub`), so its requests already name it.

A matched `/v2/<name>/…` becomes `/v2/<project>/<name>/…` before anything else sees it, so
access, policies and the cache take it as any pull from the project. Mirror projects are
public: daemons pull from mirrors anonymously. Without mirrors configured this is not in the
application at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["MirrorRoutes"]


class MirrorRoutes:
    def __init__(self, app: ASGIApp, namespaces: Mapping[str, str], hosts: Mapping[str, str]):
        self.app = app
        self._namespaces = {k.lower(): v for k, v in namespaces.items()}
        self._hosts = {k.lower(): v for k, v in hosts.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and path.startswith("/v2/") and len(path) > 4 and not path.startswith("/v2/_"):
            project = self._project(scope)
            if project is not None and not path.startswith(f"/v2/{project}/"):
                rewritten = f"/v2/{project}/{path[4:]}"
                scope = {**scope, "path": rewritten, "raw_path": rewritten.encode()}
        await self.app(scope, receive, send)

    def _project(self, scope: Scope) -> str | None:
        query: bytes = scope.get("query_string", b"")
        if self._namespaces and b"ns=" in query:
            for namespace in parse_qs(query.decode("latin-1")).get("ns", []):
                if (found := self._namespaces.get(namespace.lower())) is not None:
                    return found
        if self._hosts:
            host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
            return self._hosts.get(host.lower())
        return None
