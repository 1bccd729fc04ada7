"""The UI's frame on a live server: where it answers, its security headers, its error
pages, its assets, and that the APIs keep their own errors."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from portside.ui.app import CONTENT_SECURITY_POLICY
from tests.servers import Portside


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    running = Portside(data_dir=tmp_path_factory.mktemp("ui") / "data", open_registry=False).start()
    yield running
    running.stop()


@pytest.fixture
def client(server: Portside) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        yield browser


def test_the_front_door_opens_the_project_list(client: httpx.Client) -> None:
    answer = client.get("/")
    assert answer.status_code == 303 and answer.headers["location"] == "/projects"


def test_a_page_that_does_not_exist_is_a_page_that_says_so(client: httpx.Client) -> None:
    answer = client.get("/no/such/page")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "There is no page at /no/such/page." in answer.text
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY and "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"


def test_pages_hold_no_inline_script_or_style_and_nothing_from_elsewhere(client: httpx.Client) -> None:
    text = client.get("/no/such/page").text
    assert not re.search(r"<script(?![^>]*\bsrc=)", text), "an inline script"
    assert "<style" not in text and " style=" not in text
    assert not re.search(r"""(?:src|href)=["'](?:https?:)?//""", text)


@pytest.mark.parametrize(
    ("path", "shape"),
    [
        ("/v2/nothing/here", "NAME_UNKNOWN"),
        ("/api/v2.0/nothing", "NOT_FOUND"),
        ("/static/vendor/none/1/x.js", "NAME_UNKNOWN"),
    ],
)
def test_the_apis_keep_their_own_errors(client: httpx.Client, path: str, shape: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["errors"][0]["code"] == shape


def test_the_assets_a_page_names_are_served_for_a_year_and_only_by_their_hash(client: httpx.Client) -> None:
    text = client.get("/no/such/page").text
    references = re.findall(r"""(?:src|href)="(/static/[^"]+)\"""", text)
    assert len(references) == 4, references  # the style sheet, the icon, htmx, the UI's script
    for reference in references:
        answer = client.get(reference)
        assert answer.status_code == 200, reference
        assert "immutable" in answer.headers["cache-control"]
    own = next(r for r in references if r.endswith("portside.css"))
    stale = re.sub(r"/static/ui/[0-9a-f]+/", "/static/ui/0000000000000000/", own)
    assert client.get(stale).status_code == 404
