"""Every /v2 route and method resolves to the accesses it needs."""

import pytest
from starlette.requests import Request

from portside.auth.access import Access
from portside.http.access import required_access
from portside.http.v2.routes import v2_routes


def _request(method: str, name: str | None = "team/app", query: bytes = b"") -> Request:
    params = {"name": name} if name else {}
    return Request({"type": "http", "method": method, "path_params": params, "query_string": query, "headers": []})


def test_every_route_has_a_rule():
    for route in v2_routes():
        table_name = route.name.split(":")[0]
        for method in route.methods or ():
            assert isinstance(required_access(table_name, _request(method)), list)


@pytest.mark.parametrize(
    "route, method, expected",
    [
        ("manifest", "GET", [Access.pull("team/app")]),
        ("blob", "HEAD", [Access.pull("team/app")]),
        ("tags", "HEAD", [Access.pull("team/app")]),
        ("manifest", "PUT", [Access.pull("team/app"), Access.push("team/app")]),
        ("upload", "PATCH", [Access.pull("team/app"), Access.push("team/app")]),
        ("manifest", "DELETE", [Access.delete("team/app")]),
        ("blob", "DELETE", [Access.delete("team/app")]),
    ],
)
def test_rules(route, method, expected):
    assert required_access(route, _request(method)) == expected


def test_mount_needs_pull_on_the_source():
    wanted = required_access("upload_start", _request("POST", query=b"mount=sha256:x&from=other/repo"))
    assert Access.pull("other/repo") in wanted and Access.push("team/app") in wanted


def test_catalog_and_base():
    assert required_access("catalog", _request("GET", None)) == [Access.catalog()]
    assert required_access("base", _request("GET", None)) == []


@pytest.mark.parametrize("route, method", [("manifest", "GET"), ("manifest", "HEAD"), ("blob", "HEAD")])
def test_the_fast_reads_ask_what_the_table_says(route, method):
    """http/v2/fastpath.py answers these without the router and asks for pull on the
    repository; the table must agree, or the fast path would grant differently."""
    assert required_access(route, _request(method)) == [Access.pull("team/app")]
