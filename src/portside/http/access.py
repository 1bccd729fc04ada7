"""The one table of what each `/v2` route needs: (route, method) → accesses.

Cross-repository mounts also need pull on the source repository.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from starlette.requests import Request

from portside.auth.access import Access

__all__ = ["required_access"]

_Rule = Callable[[Request], list[Access]]


def _repo(request: Request) -> str:
    return str(request.path_params["name"])


def _pull(request: Request) -> list[Access]:
    return [Access.pull(_repo(request))]


def _push(request: Request) -> list[Access]:
    return [Access.pull(_repo(request)), Access.push(_repo(request))]


def _delete(request: Request) -> list[Access]:
    return [Access.delete(_repo(request))]


def _start_upload(request: Request) -> list[Access]:
    wanted = _push(request)
    source = request.query_params.get("from")
    if request.query_params.get("mount") and source:
        wanted.append(Access.pull(source))
    return wanted


_TABLE: Mapping[tuple[str, str], _Rule] = {
    ("base", "GET"): lambda request: [],
    ("catalog", "GET"): lambda request: [Access.catalog()],
    ("tags", "GET"): _pull,
    ("manifest", "GET"): _pull,
    ("manifest", "HEAD"): _pull,
    ("manifest", "PUT"): _push,
    ("manifest", "DELETE"): _delete,
    ("blob", "GET"): _pull,
    ("blob", "HEAD"): _pull,
    ("blob", "DELETE"): _delete,
    ("upload_start", "POST"): _start_upload,
    ("upload", "GET"): _push,
    ("upload", "PATCH"): _push,
    ("upload", "PUT"): _push,
    ("upload", "DELETE"): _push,
    ("referrers", "GET"): _pull,
}


def required_access(route: str, request: Request) -> list[Access]:
    rule = _TABLE.get((route, request.method))
    if rule is None and request.method == "HEAD":
        rule = _TABLE[(route, "GET")]  # a HEAD reads what its GET reads
    if rule is None:
        raise KeyError(f"no access rule for {request.method} on {route}")
    return rule(request)


def methods(route: str) -> list[str]:
    return [method for (name, method) in _TABLE if name == route]
