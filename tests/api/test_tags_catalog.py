"""Tags list and catalog, with `n`/`last` pagination and the `Link` header.

(Distribution 2.8 returns tags in storage order, not sorted as the spec requires, so
the tag-order cases fail against it; Portside is the target.)
"""

from __future__ import annotations

import re

import httpx
import pytest

from tests.api import oci

LINK = re.compile(r'^<([^>]+)>;\s*rel="?next"?$')


def _next(client: httpx.Client, response: httpx.Response) -> httpx.URL | None:
    link = response.headers.get("link")
    if link is None:
        return None
    m = LINK.match(link.strip())
    assert m, f'Link header {link!r} is not <url>; rel="next"'
    return response.request.url.join(m.group(1))


def _walk(client: httpx.Client, url: str, key: str, **params: str) -> tuple[list[str], list[int]]:
    """Follows Link headers to the end; returns every item and each page's size."""
    items: list[str] = []
    sizes: list[int] = []
    r = client.get(url, params=params)
    for _ in range(1000):
        assert r.status_code == 200, oci.error_text(r)
        page = r.json()[key] or []
        items += page
        sizes.append(len(page))
        nxt = _next(client, r)
        if nxt is None:
            return items, sizes
        r = client.get(nxt)
    raise AssertionError("pagination never ended")


@pytest.fixture
def tagged(client: httpx.Client, repo: str) -> list[str]:
    """A repository with seven tags (on two manifests), in the order the spec wants."""
    tags = ["v1", "v10", "v2", "Latest", "alpha", "beta_1", "z.last"]
    a = oci.push_image(client, repo, tags[0])
    b = oci.push_image(client, repo, tags[1])
    for i, tag in enumerate(tags[2:]):
        r = oci.put_manifest(client, repo, tag, a if i % 2 else b)
        assert r.status_code == 201, oci.error_text(r)
    return sorted(tags)  # ASCIIbetical, as Go's sort.Strings


def test_tags_list(client: httpx.Client, repo: str, tagged: list[str]) -> None:
    r = client.get(f"/v2/{repo}/tags/list")
    assert r.status_code == 200, oci.error_text(r)
    body = r.json()
    assert body["name"] == repo
    assert body["tags"] == tagged
    assert "link" not in r.headers


def test_tags_list_n(client: httpx.Client, repo: str, tagged: list[str]) -> None:
    r = client.get(f"/v2/{repo}/tags/list", params={"n": "3"})
    assert r.status_code == 200
    assert r.json()["tags"] == tagged[:3]
    nxt = _next(client, r)
    assert nxt is not None, "more tags remain, so a Link header leads on"
    assert nxt.path == f"/v2/{repo}/tags/list"
    assert nxt.params.get("n") == "3"
    assert nxt.params.get("last") == tagged[2]


def test_tags_list_follow_links(client: httpx.Client, repo: str, tagged: list[str]) -> None:
    items, sizes = _walk(client, f"/v2/{repo}/tags/list", "tags", n="2")
    assert items == tagged
    assert sizes[:-1] == [2] * (len(sizes) - 1)


def test_tags_list_last(client: httpx.Client, repo: str, tagged: list[str]) -> None:
    r = client.get(f"/v2/{repo}/tags/list", params={"n": "2", "last": tagged[1]})
    assert r.json()["tags"] == tagged[2:4]
    r = client.get(f"/v2/{repo}/tags/list", params={"last": tagged[3]})
    assert r.status_code == 200
    assert r.json()["tags"] == tagged[4:]


def test_tags_list_last_not_a_tag(client: httpx.Client, repo: str, tagged: list[str]) -> None:
    """`last` is a position in the order, whether or not such a tag exists."""
    r = client.get(f"/v2/{repo}/tags/list", params={"n": "100", "last": "b"})
    assert r.json()["tags"] == [t for t in tagged if t > "b"]


def test_tags_list_last_page_has_no_link(client: httpx.Client, repo: str, tagged: list[str]) -> None:
    r = client.get(f"/v2/{repo}/tags/list", params={"n": "3", "last": tagged[-4]})
    assert r.json()["tags"] == tagged[-3:]
    nxt = _next(client, r)
    if nxt is not None:  # a registry may not know it was the last page; then the next is empty
        follow = client.get(nxt)
        assert follow.status_code == 200 and not follow.json()["tags"]
        assert "link" not in follow.headers


def test_tags_list_n_larger_than_count(client: httpx.Client, repo: str, tagged: list[str]) -> None:
    r = client.get(f"/v2/{repo}/tags/list", params={"n": "1000"})
    assert r.json()["tags"] == tagged
    assert "link" not in r.headers


@pytest.mark.portside_only
def test_tags_list_n_zero(client: httpx.Client, repo: str, tagged: list[str]) -> None:
    """The spec: n=0 returns an empty list and no Link header."""
    r = client.get(f"/v2/{repo}/tags/list", params={"n": "0"})
    assert r.status_code == 200, oci.error_text(r)
    assert not r.json()["tags"]
    assert "link" not in r.headers


def test_tags_list_after_tag_delete(client: httpx.Client, repo: str) -> None:
    m = oci.push_image(client, repo, "keep")
    oci.put_manifest(client, repo, "drop", m)
    other = oci.push_image(client, repo, "other")
    assert client.delete(f"/v2/{repo}/manifests/{other.digest}").status_code == 202
    assert client.get(f"/v2/{repo}/tags/list").json()["tags"] == ["drop", "keep"]


@pytest.mark.portside_only
def test_tags_list_many(client: httpx.Client, repo: str) -> None:
    m = oci.push_image(client, repo, "t000")
    tags = ["t000"]
    for i in range(1, 120):
        tag = f"t{i:03d}"
        assert oci.put_manifest(client, repo, tag, m).status_code == 201
        tags.append(tag)
    items, sizes = _walk(client, f"/v2/{repo}/tags/list", "tags", n="25")
    assert items == tags
    assert sizes[:4] == [25, 25, 25, 25]


# Catalog --------------------------------------------------------------------------------------


@pytest.fixture
def repos(client: httpx.Client) -> list[str]:
    prefix = oci.unique("catalog")
    names = [f"{prefix}/a", f"{prefix}/b", f"{prefix}/c/deep", f"{prefix}/d"]
    for name in names:
        oci.push_image(client, name, "x")
    return names


def test_catalog_contains_repositories(client: httpx.Client, repos: list[str]) -> None:
    items, _ = _walk(client, "/v2/_catalog", "repositories", n="1000")
    for name in repos:
        assert name in items
    assert items == sorted(items), "the catalog is in lexical order"
    assert len(items) == len(set(items))


def test_catalog_without_n(client: httpx.Client, repos: list[str]) -> None:
    items, _ = _walk(client, "/v2/_catalog", "repositories")
    assert set(repos) <= set(items)


def test_catalog_pagination(client: httpx.Client, repos: list[str]) -> None:
    start = repos[0].split("/")[0]  # sorts just before all of ours, after everything else
    r = client.get("/v2/_catalog", params={"n": "2", "last": start})
    assert r.status_code == 200, oci.error_text(r)
    assert r.json()["repositories"] == repos[:2]
    nxt = _next(client, r)
    assert nxt is not None
    assert nxt.path == "/v2/_catalog"
    assert nxt.params.get("n") == "2" and nxt.params.get("last") == repos[1]
    r = client.get(nxt)
    assert r.json()["repositories"] == repos[2:4]


def test_catalog_walk_small_pages(client: httpx.Client, repos: list[str]) -> None:
    start = repos[0].split("/")[0]
    items, sizes = _walk(client, "/v2/_catalog", "repositories", n="3", last=start)
    assert items[:4] == repos
    assert all(s == 3 for s in sizes[:-1])


@pytest.mark.portside_only
def test_catalog_n_zero(client: httpx.Client, repos: list[str]) -> None:
    r = client.get("/v2/_catalog", params={"n": "0"})
    assert r.status_code == 200
    assert not r.json()["repositories"]
    assert "link" not in r.headers


@pytest.mark.portside_only
@pytest.mark.parametrize("n", ["100000", "999999999999", "99999999999999999999999999"])
def test_huge_page_size(client: httpx.Client, repo: str, tagged: list[str], n: str) -> None:
    r = client.get(f"/v2/{repo}/tags/list", params={"n": n})
    if r.status_code == 200:
        assert r.json()["tags"] == tagged
    else:
        oci.assert_error(r, 400)
    r = client.get("/v2/_catalog", params={"n": n})
    assert r.status_code in (200, 400), oci.error_text(r)
    if r.status_code == 400:
        oci.errors(r)


def test_tags_list_last_beyond_the_end(client: httpx.Client, repo: str, tagged: list[str]) -> None:
    r = client.get(f"/v2/{repo}/tags/list", params={"n": "5", "last": "zzzz"})
    assert r.status_code == 200
    assert not r.json()["tags"]
    assert "link" not in r.headers
