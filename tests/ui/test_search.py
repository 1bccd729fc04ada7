"""The search page on a live server: repositories by name, tags (alone or as repository:tag),
digests in full, as a prefix or bare, and the images that use a blob as a layer or config;
and that a private project the visitor may not see is found by nothing, looking exactly
like a search for what does not exist."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.api import oci
from tests.servers import ADMIN_PASSWORD, Portside
from tests.ui.pages import api, unique

API = "/api/v2.0"
ADMIN = ("admin", ADMIN_PASSWORD)
PASSWORD = "Passw0rd-ui-search"
GUEST = 3
GROUP_LIMIT = 50


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    running = Portside(
        data_dir=tmp_path_factory.mktemp("ui-search") / "data",
        env={"PORTSIDE_LOGIN_FAILURE_LIMIT": "100000"},
        open_registry=False,
    )
    running.start()
    yield running
    running.stop()


def new_user(server: Portside) -> tuple[str, str]:
    name = unique("u")
    r = api(server, "POST", "/users", json={"username": name, "password": PASSWORD, "email": f"{name}@example.com"})
    assert r.status_code == 201, r.text
    return (name, PASSWORD)


def new_project(server: Portside, public: bool, member: str | None = None) -> str:
    name = unique("p")
    r = api(server, "POST", "/projects", json={"project_name": name, "metadata": {"public": str(public).lower()}})
    assert r.status_code == 201, r.text
    if member:
        r = api(
            server, "POST", f"/projects/{name}/members", json={"role_id": GUEST, "member_user": {"username": member}}
        )
        assert r.status_code == 201, r.text
    return name


@dataclass
class Pushed:
    repository: str  # the full name
    tag: str
    image: oci.Manifest

    @property
    def layer(self) -> str:
        return self.image.blobs[1].digest

    @property
    def config(self) -> str:
        return self.image.blobs[0].digest


def push(server: Portside, repository: str, tag: str, layers: list[oci.Blob] | None = None) -> Pushed:
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        image = oci.push_image(registry, repository, tag, layers=layers)
    return Pushed(repository, tag, image)


class Browser:
    def __init__(self, server: Portside, who: tuple[str, str] | None):
        self.client = httpx.Client(base_url=server.url, timeout=60, follow_redirects=False)
        if who is not None:
            r = self.client.post("/c/login", data={"principal": who[0], "password": who[1]})
            assert r.status_code == 200, r.text

    def search(self, q: str, **headers: str) -> httpx.Response:
        return self.client.get("/search", params={"q": q}, headers=headers)

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def admin(server: Portside) -> Iterator[Browser]:
    browser = Browser(server, ADMIN)
    yield browser
    browser.close()


@pytest.fixture
def anonymous(server: Portside) -> Iterator[Browser]:
    browser = Browser(server, None)
    yield browser
    browser.close()


def main_of(page: str) -> str:
    found = re.search(r"<main[^>]*>(.*)</main>", page, re.S)
    assert found, page
    return found.group(1)


def groups_of(page: str) -> list[str]:
    return re.findall(r'<section class="search-group" aria-labelledby="found-([a-z-]+)"', page)


def shape_of(page: str, q: str) -> str:
    """The page without the text searched for, wherever it is written (the sign-in link
    carries it URL-encoded)."""
    return re.sub(r"/sign-in\?next=[^\"]*", "/sign-in?next=", page).replace(q, "<q>")


def links_of(page: str) -> set[str]:
    return set(re.findall(r'href="([^"]+)"', main_of(page)))


NOTHING = "Nothing you may see matches"


def test_the_empty_search_explains_itself_and_the_header_box_is_empty(admin: Browser) -> None:
    answer = admin.client.get("/search")
    assert answer.status_code == 200
    assert 'id="header-search" name="q" type="search"' in answer.text and 'value=""' in answer.text
    assert "Search for repositories by name" in answer.text and groups_of(answer.text) == []


def test_a_repository_is_found_by_part_of_its_name(server: Portside, admin: Browser) -> None:
    project = new_project(server, False)
    stem = unique("findme")
    push(server, f"{project}/{stem}-api", "v1")
    push(server, f"{project}/team/{stem}-web", "v1")
    answer = admin.search(stem[2:])
    assert answer.status_code == 200
    assert groups_of(answer.text) == ["repositories"]
    header_box = re.search(r'<input id="header-search"[^>]*>', answer.text)
    assert header_box and f'value="{stem[2:]}"' in header_box.group(0)
    assert f"<title>Search: {stem[2:]} · Portside</title>" in answer.text
    assert {f"/projects/{project}/repositories/{stem}-api", f"/projects/{project}/repositories/team/{stem}-web"} <= (
        links_of(answer.text)
    )
    assert '<span class="search-count">2</span>' in answer.text
    # The project's own name finds the project, and its repositories (their names hold it).
    by_project = admin.search(project)
    assert groups_of(by_project.text) == ["projects", "repositories"]
    assert f"/projects/{project}" in links_of(by_project.text)


def test_tags_are_found_by_name_and_as_repository_colon_tag(server: Portside, admin: Browser) -> None:
    project = new_project(server, False)
    tag = unique("rel-")
    pushed = push(server, f"{project}/svc", tag)
    push(server, f"{project}/other", tag)
    answer = admin.search(tag)
    assert groups_of(answer.text) == ["tags"]
    links = links_of(answer.text)
    assert f"/projects/{project}/repositories/svc/-/artifacts/{tag}" in links
    assert f"/projects/{project}/repositories/svc" in links and f"/projects/{project}/repositories/other" in links
    assert pushed.image.digest[:19] in answer.text
    narrowed = admin.search(f"{project}/svc:{tag[:6]}")
    assert f"/projects/{project}/repositories/svc/-/artifacts/{tag}" in links_of(narrowed.text)
    assert f"/projects/{project}/repositories/other" not in links_of(narrowed.text)
    # As pulled, with the registry's host in front.
    host = server.url.split("://", 1)[1]
    pulled = admin.search(f"{host}/{project}/svc:{tag}")
    assert f"/projects/{project}/repositories/svc/-/artifacts/{tag}" in links_of(pulled.text)
    # The repository part still finds the repository, the tag part no tag.
    assert groups_of(admin.search(f"{project}/svc:{tag}-no").text) == ["repositories"]


def test_a_digest_finds_its_artifacts_in_full_as_a_prefix_and_bare(server: Portside, admin: Browser) -> None:
    project = new_project(server, False)
    first = push(server, f"{project}/one", "v1")
    # The same image in a second repository: one digest, two artifacts.
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        oci.push_manifest(registry, f"{project}/two", first.image, "copy")
    digest = first.image.digest
    artifact_links = {
        f"/projects/{project}/repositories/one/-/artifacts/{digest}",
        f"/projects/{project}/repositories/two/-/artifacts/{digest}",
    }
    for text in (digest, digest[:19], digest[7:], digest[7:19], digest.upper()):
        answer = admin.search(text)
        assert answer.status_code == 200
        assert "artifacts" in groups_of(answer.text), text
        assert artifact_links <= links_of(answer.text), text
    tagged = admin.search(digest)
    assert re.search(r'<span class="badge">copy</span>', tagged.text) and '<span class="badge">v1</span>' in tagged.text
    # Eleven hex digits are too few to be read as a digest.
    assert "artifacts" not in groups_of(admin.search(digest[:18]).text)
    assert NOTHING in admin.search("sha256:" + "0" * 64).text


def test_a_layer_digest_finds_the_images_built_on_it(server: Portside, admin: Browser) -> None:
    project = new_project(server, False)
    shared = oci.layer()
    base = push(server, f"{project}/base", "1.0", layers=[shared])
    app = push(server, f"{project}/app", "2.0", layers=[shared, oci.layer()])
    answer = admin.search(shared.digest)
    assert groups_of(answer.text) == ["blob-uses"]
    links = links_of(answer.text)
    assert f"/projects/{project}/repositories/base/-/artifacts/{base.image.digest}" in links
    assert f"/projects/{project}/repositories/app/-/artifacts/{app.image.digest}" in links
    assert answer.text.count("<td>layer</td>") == 2
    assert '<span class="badge">2.0</span>' in answer.text
    by_config = admin.search(app.config[:30])
    assert groups_of(by_config.text) == ["blob-uses"] and "<td>config</td>" in by_config.text
    assert f"/projects/{project}/repositories/app/-/artifacts/{app.image.digest}" in links_of(by_config.text)


def test_a_private_project_is_found_by_nothing_for_those_who_may_not_see_it(
    server: Portside, anonymous: Browser
) -> None:
    member = new_user(server)
    private = new_project(server, False, member=member[0])
    secret = unique("secret")
    pushed = push(server, f"{private}/{secret}", unique("hidden-"))
    stranger = Browser(server, new_user(server))
    insider = Browser(server, member)
    searches = {
        "project": (private, unique("p")),
        "repository": (f"{private}/{secret}", f"{unique('p')}/{unique('secret')}"),
        "tag": (pushed.tag, unique("hidden-")),
        "repository:tag": (f"{private}/{secret}:{pushed.tag}", f"{unique('p')}/{unique('secret')}:{unique('hidden-')}"),
        "digest": (pushed.image.digest, oci.digest(uuid.uuid4().bytes)),
        "digest prefix": (pushed.image.digest[7:21], oci.digest(uuid.uuid4().bytes)[7:21]),
        "layer": (pushed.layer, oci.digest(uuid.uuid4().bytes)),
        "config": (pushed.config, oci.digest(uuid.uuid4().bytes)),
    }
    try:
        for kind, (hidden, missing) in searches.items():
            seen = insider.search(hidden)
            assert groups_of(seen.text), kind
            assert f"/projects/{private}" in "".join(links_of(seen.text)), kind
            for browser in (stranger, anonymous):
                found, absent = browser.search(hidden), browser.search(missing)
                assert found.status_code == absent.status_code == 200, kind
                assert NOTHING in found.text, kind
                assert private not in main_of(found.text).replace(hidden, ""), kind
                # The same page, word for word, as for a text that matches nothing at all.
                assert shape_of(found.text, hidden) == shape_of(absent.text, missing), kind
        # The API's search tells the same.
        for who in (new_user(server), None):
            found = httpx.get(f"{server.url}{API}/search", params={"q": secret}, auth=who, timeout=30).json()
            assert found == {"project": [], "repository": []}
    finally:
        stranger.close()
        insider.close()


def test_anonymous_visitors_find_what_public_projects_hold(server: Portside, anonymous: Browser) -> None:
    public = new_project(server, True)
    pushed = push(server, f"{public}/{unique('open')}", unique("pub-"))
    short = pushed.repository.split("/", 1)[1]
    by_name = anonymous.search(short)
    assert f"/projects/{public}/repositories/{short}" in links_of(by_name.text)
    assert "artifacts" in groups_of(anonymous.search(pushed.image.digest).text)
    assert "tags" in groups_of(anonymous.search(pushed.tag).text)
    assert "blob-uses" in groups_of(anonymous.search(pushed.layer).text)


def test_a_group_is_bounded_and_says_so(server: Portside, admin: Browser) -> None:
    project = new_project(server, False)
    stem = unique("many-")
    pushed = push(server, f"{project}/bulk", f"{stem}-000")
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        for n in range(1, GROUP_LIMIT + 2):
            r = oci.put_manifest(registry, f"{project}/bulk", f"{stem}-{n:03}", pushed.image)
            assert r.status_code == 201, r.text
    answer = admin.search(stem)
    assert answer.text.count("/-/artifacts/") == GROUP_LIMIT
    assert f'<span class="search-count">{GROUP_LIMIT}+</span>' in answer.text
    assert f"Only the first {GROUP_LIMIT} are shown" in answer.text
    # The artifact names its first ten tags and says there are more.
    by_digest = admin.search(pushed.image.digest)
    assert by_digest.text.count('<span class="badge">' + stem) == 10 and "and more" in by_digest.text


def test_htmx_gets_the_results_alone(server: Portside, admin: Browser) -> None:
    project = new_project(server, False)
    push(server, f"{project}/partial", "v1")
    rows = admin.search(f"{project}/part", **{"HX-Request": "true", "HX-Target": "results"})
    assert rows.status_code == 200
    assert "<html" not in rows.text and "<header" not in rows.text
    assert f'href="/projects/{project}/repositories/partial"' in rows.text


@pytest.mark.parametrize("text", ["a\x00b", "x" * 1000, "%", "sha256:", "sha1:" + "a" * 40, "::", "sha256:%"])
def test_odd_texts_find_nothing_and_break_nothing(admin: Browser, text: str) -> None:
    answer = admin.search(text)
    assert answer.status_code == 200
    assert groups_of(answer.text) == [] and NOTHING in answer.text
