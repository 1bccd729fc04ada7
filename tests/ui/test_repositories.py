"""The repository pages on a live server: the description (Markdown, rendered safely),
the artifacts (paged, ordered and filtered by the store), the tags view of a repository
with hundreds and thousands of tags, an index's platforms, the pull commands, deleting
the repository, and what guests and strangers may see and do."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from html import unescape

import httpx
import pytest

from tests.api import oci
from tests.servers import ADMIN_PASSWORD, Portside
from tests.ui.pages import api, unique

API = "/api/v2.0"
ADMIN = ("admin", ADMIN_PASSWORD)
PASSWORD = "Passw0rd-ui-repositories"
DEVELOPER, GUEST, LIMITED_GUEST = 2, 3, 5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    running = Portside(
        data_dir=tmp_path_factory.mktemp("ui-repositories") / "data",
        env={"PORTSIDE_LOGIN_FAILURE_LIMIT": "100000"},
        open_registry=False,
    )
    running.start()
    yield running
    running.stop()


def registry(server: Portside) -> httpx.Client:
    return httpx.Client(base_url=server.url, auth=ADMIN, timeout=60)


def new_user(server: Portside) -> tuple[str, str]:
    name = unique("u")
    r = api(server, "POST", "/users", json={"username": name, "password": PASSWORD, "email": f"{name}@example.com"})
    assert r.status_code == 201, r.text
    return (name, PASSWORD)


def new_project(server: Portside, public: bool = False, members: dict[str, int] | None = None) -> str:
    name = unique("p")
    r = api(server, "POST", "/projects", json={"project_name": name, "metadata": {"public": str(public).lower()}})
    assert r.status_code == 201, r.text
    for member, role in (members or {}).items():
        r = api(
            server, "POST", f"/projects/{name}/members", json={"role_id": role, "member_user": {"username": member}}
        )
        assert r.status_code == 201, r.text
    return name


def tag_many(server: Portside, repo: str, manifest: oci.Manifest, tags: list[str]) -> None:
    """Tag one pushed manifest many times over /v2, a few PUTs at a time."""

    def put(chunk: list[str]) -> None:
        with registry(server) as client:
            for tag in chunk:
                r = oci.put_manifest(client, repo, tag, manifest)
                assert r.status_code == 201, oci.error_text(r)

    chunks = [tags[i::6] for i in range(6)]
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(put, chunks))


class Browser:
    """A browser signed in through /c/login, holding the `sid` cookie and the CSRF token."""

    def __init__(self, server: Portside, who: tuple[str, str] | None):
        self.client = httpx.Client(base_url=server.url, timeout=60, follow_redirects=False)
        self.csrf = ""
        if who is not None:
            r = self.client.post("/c/login", data={"principal": who[0], "password": who[1]})
            assert r.status_code == 200, r.text
            self.csrf = r.headers["X-Harbor-CSRF-Token"]

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return self.client.get(path, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, data: dict[str, str], csrf: bool = True) -> httpx.Response:
        return self.client.post(path, data={**data, **({"csrf_token": self.csrf} if csrf else {})})

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def admin(server: Portside) -> Iterator[Browser]:
    browser = Browser(server, ADMIN)
    yield browser
    browser.close()


def message_of(page: str) -> str:
    found = re.search(r'<p class="message">(.*?)</p>', page, re.S)
    assert found, page
    return unescape(found.group(1))


def artifact_digests(page: str) -> list[str]:
    """The digests of the artifact rows, in order (each row links its artifact by digest)."""
    return re.findall(r'<a class="digest" href="[^"]*/-/artifacts/(sha256:[0-9a-f]{64})"', page)


def tag_names(page: str) -> list[str]:
    return [unescape(t) for t in re.findall(r'<span class="tag-name">([^<]*)</span>', page)]


def repo_url(project: str, repository: str = "app") -> str:
    return f"/projects/{project}/repositories/{repository}"


def test_the_description_is_markdown_without_scripts_or_script_links(server: Portside, admin: Browser) -> None:
    project = new_project(server)
    with registry(server) as client:
        oci.push_image(client, f"{project}/app", "v1")
    text = (
        "# Our app\n\n**bold** and [docs](https://example.com/docs)\n\n"
        "<script>alert(1)</script>\n\n[click](javascript:alert(2)) [data](data:text/html,<b>x</b>)\n"
    )
    saved = admin.post(f"{repo_url(project)}/-/description", {"description": text})
    assert saved.status_code == 303 and saved.headers["location"] == repo_url(project)
    assert api(server, "GET", f"/projects/{project}/repositories/app").json()["description"] == text
    shown = admin.get(repo_url(project))
    assert shown.status_code == 200 and "Description saved." in shown.text
    rendered = re.search(r'<div class="markdown">(.*?)</div>', shown.text, re.S)
    assert rendered, shown.text
    html = rendered.group(1)
    assert "<h1>Our app</h1>" in html and "<strong>bold</strong>" in html
    assert '<a href="https://example.com/docs" rel="nofollow noopener noreferrer">docs</a>' in html
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # The links to script and data URLs stay text: no link is made of them.
    assert "[click](javascript:alert(2))" in html and "<b>" not in html
    assert not re.search(r"href=\"(?:javascript|data):", shown.text, re.I)
    assert "<script>alert" not in shown.text  # nor in the edit form's text area, which escapes it
    forged = admin.post(f"{repo_url(project)}/-/description", {"description": "changed"}, csrf=False)
    assert forged.status_code == 403
    assert api(server, "GET", f"/projects/{project}/repositories/app").json()["description"] == text


def test_a_description_too_long_is_refused_with_the_reason(server: Portside, admin: Browser) -> None:
    project = new_project(server)
    with registry(server) as client:
        oci.push_image(client, f"{project}/app", "v1")
    refused = admin.post(f"{repo_url(project)}/-/description", {"description": "x" * 70_000})
    assert refused.status_code == 400
    assert 'id="description-error"' in refused.text and "description" in refused.text
    assert api(server, "GET", f"/projects/{project}/repositories/app").json().get("description", "") == ""


def test_artifacts_are_paged_ordered_and_filtered_as_the_api_does(server: Portside, admin: Browser) -> None:
    project = new_project(server)
    repo = f"{project}/app"
    pushed = []
    with registry(server) as client:
        for i in range(23):
            pushed.append(oci.push_image(client, repo, f"v{i:03d}").digest)
        special = oci.push_image(client, repo, "special-edition").digest
    first = admin.get(repo_url(project), params={"page_size": 10})
    assert first.status_code == 200
    assert artifact_digests(first.text) == [special, *reversed(pushed)][:10]  # newest first
    assert "Page 1 of 3 · 24 in all" in first.text and 'rel="next"' in first.text
    second = admin.get(repo_url(project), params={"page_size": 10, "page": 2})
    api_page = api(
        server, "GET", f"/projects/{project}/repositories/app/artifacts", params={"page_size": 10, "page": 2}
    )
    assert artifact_digests(second.text) == [a["digest"] for a in api_page.json()]
    oldest = admin.get(repo_url(project), params={"sort": "push_time", "page_size": 5})
    assert artifact_digests(oldest.text) == pushed[:5]
    assert 'aria-current="true">Oldest push' in oldest.text
    filtered = admin.get(repo_url(project), params={"q": "special"})
    assert artifact_digests(filtered.text) == [special]
    by_digest = admin.get(repo_url(project), params={"q": pushed[7][:19]})
    assert artifact_digests(by_digest.text) == [pushed[7]]
    nothing = admin.get(repo_url(project), params={"q": "no-such-tag"})
    assert artifact_digests(nothing.text) == [] and "No artifact has a tag or digest with" in nothing.text
    # Harbor's query grammar typed in the box is text, not conditions.
    odd = admin.get(repo_url(project), params={"q": "v00,digest=~sha"})
    assert odd.status_code == 200
    rows = admin.get(repo_url(project), params={"q": "v001"}, headers={"HX-Request": "true", "HX-Target": "rows"})
    assert rows.status_code == 200 and "<header" not in rows.text and "<html" not in rows.text
    assert artifact_digests(rows.text) == [pushed[1]] and "tag-chip" in rows.text


def test_three_hundred_tags_page_in_the_tags_view(server: Portside, admin: Browser) -> None:
    project = new_project(server)
    repo = f"{project}/app"
    with registry(server) as client:
        image = oci.push_image(client, repo, "latest")
    names = [f"t{i:03d}" for i in range(300)]
    tag_many(server, repo, image, names)
    every = sorted([*names, "latest"])
    view = admin.get(f"{repo_url(project)}/-/tags", params={"page_size": 50, "page": 2})
    assert view.status_code == 200
    assert tag_names(view.text) == every[50:100]
    assert "Page 2 of 7 · 301 in all" in view.text
    assert view.text.count(f'/-/artifacts/{image.digest}"') == 50
    filtered = admin.get(f"{repo_url(project)}/-/tags", params={"q": "t01"})
    assert tag_names(filtered.text) == [n for n in every if "t01" in n]
    newest = admin.get(f"{repo_url(project)}/-/tags", params={"sort": "-push_time", "page_size": 1})
    assert tag_names(newest.text) != ["latest"]
    rows = admin.get(
        f"{repo_url(project)}/-/tags", params={"q": "t29"}, headers={"HX-Request": "true", "HX-Target": "rows"}
    )
    assert tag_names(rows.text) == [f"t29{i}" for i in range(10)] and "<header" not in rows.text
    # The artifact's row shows its first tags and says how many more the tags view holds.
    page = admin.get(repo_url(project))
    assert tag_names(page.text) == every[:10]
    assert "and 291 more" in page.text and f'href="{repo_url(project)}/-/tags"' in page.text


def test_a_repository_with_thousands_of_tags_renders_bounded_pages(server: Portside, admin: Browser) -> None:
    project = new_project(server)
    repo = f"{project}/app"
    with registry(server) as client:
        image = oci.push_image(client, repo, "base")
        other = oci.push_image(client, repo, "other")
    tag_many(server, repo, image, [f"r{i:04d}" for i in range(2500)])
    page = admin.get(repo_url(project))
    assert page.status_code == 200
    assert artifact_digests(page.text) == [other.digest, image.digest]
    assert len(tag_names(page.text)) == 11  # at most 10 chips for the busy one, 1 for the other
    assert "and 2491 more" in page.text
    tags = admin.get(f"{repo_url(project)}/-/tags", params={"page": 40})
    assert len(tag_names(tags.text)) == 50 and "Page 40 of 51 · 2502 in all" in tags.text
    artifact = admin.get(f"{repo_url(project)}/-/artifacts/{image.digest}")
    assert artifact.status_code == 200 and len(tag_names(artifact.text)) == 50
    assert "Page 1 of 51" in artifact.text


def test_an_index_row_opens_to_its_platforms(server: Portside, admin: Browser) -> None:
    project = new_project(server)
    repo = f"{project}/multi"
    amd64 = oci.image_manifest(config=oci.config_blob(platform=("linux", "amd64")))
    arm64 = oci.image_manifest(config=oci.config_blob(platform=("linux", "arm64")))
    document = {
        "schemaVersion": 2,
        "mediaType": oci.OCI_INDEX,
        "manifests": [
            amd64.descriptor(platform={"os": "linux", "architecture": "amd64"}),
            arm64.descriptor(platform={"os": "linux", "architecture": "arm64", "variant": "v8"}),
        ],
    }
    index = oci.Manifest(oci.canonical(document), oci.OCI_INDEX, [], [amd64, arm64])
    with registry(server) as client:
        oci.push_manifest(client, repo, index, "latest")
    page = admin.get(repo_url(project, "multi"))
    assert artifact_digests(page.text) == [index.digest]  # the children are not rows of their own
    children = re.search(r'<details class="children">(.*?)</details>', page.text, re.S)
    assert children and "2 platforms" in children.group(1)
    for child, platform in ((amd64, "linux/amd64"), (arm64, "linux/arm64/v8")):
        link = (
            f'<a href="{repo_url(project, "multi")}/-/artifacts/{child.digest}" title="{child.digest}">{platform}</a>'
        )
        assert link in children.group(1)
        assert admin.get(f"{repo_url(project, 'multi')}/-/artifacts/{child.digest}").status_code == 200
    assert "Multi-platform index" in page.text


def test_pull_commands_name_the_host_the_repository_and_the_reference(server: Portside, admin: Browser) -> None:
    project = new_project(server)
    repo = f"{project}/team/app"
    with registry(server) as client:
        oci.push_image(client, repo, "old")
        newest = oci.push_image(client, repo, "1.0")
    page = admin.get(repo_url(project, "team/app"))
    assert page.status_code == 200
    host = server.url.split("://", 1)[1]
    commands = {
        unescape(v)
        for v in re.findall(r'<input id="pull-[^"]+" class="code" type="text" readonly value="([^"]*)"', page.text)
    }
    assert {
        f"docker pull {host}/{repo}:1.0",
        f"podman pull --tls-verify=false {host}/{repo}:1.0",
        f"skopeo copy --src-tls-verify=false docker://{host}/{repo}:1.0 oci-archive:app.tar",
        f"ctr images pull --plain-http {host}/{repo}:1.0",
        f"oras pull --plain-http {host}/{repo}:1.0",
        f"docker pull {host}/{repo}@{newest.digest}",
        f"ctr images pull --plain-http {host}/{repo}@{newest.digest}",
    } <= commands
    assert 'data-copy="pull-tag-1"' in page.text and 'data-copy="pull-digest-1"' in page.text
    # The Host the browser used is the one the commands name.
    other = admin.get(repo_url(project, "team/app"), headers={"Host": "registry.example.com"})
    assert f"docker pull registry.example.com/{repo}:1.0" in other.text


def pull_commands(page: str) -> set[str]:
    return {
        unescape(v)
        for v in re.findall(r'<input id="pull-[^"]+" class="code" type="text" readonly value="([^"]*)"', page)
    }


def test_every_view_of_the_artifacts_pulls_the_newest(server: Portside, admin: Browser) -> None:
    """The pull commands name the artifact pushed last, whatever page, order or filter shows."""
    project = new_project(server)
    repo = f"{project}/app"
    with registry(server) as client:
        for i in range(6):
            oci.push_image(client, repo, f"v{i}")
        newest = oci.push_image(client, repo, "latest")
    host = server.url.split("://", 1)[1]
    for params in ({}, {"page_size": 3, "page": 3}, {"q": "v1"}, {"sort": "push_time"}, {"q": "no-such-tag"}):
        page = admin.get(repo_url(project), params=params)
        assert page.status_code == 200
        commands = pull_commands(page.text)
        assert f"docker pull {host}/{repo}:latest" in commands, params
        assert f"docker pull {host}/{repo}@{newest.digest}" in commands, params


def test_the_heading_and_the_pager_count_the_same_artifacts(server: Portside, admin: Browser) -> None:
    """Unfiltered, the pager's total is the heading's artifact count; both follow pushes
    and deletes, and an image that is a child of an index in another repository is an
    artifact of its own in this one."""
    project = new_project(server)
    repo = f"{project}/app"

    def counted(**params: object) -> tuple[int, int]:
        page = admin.get(repo_url(project), params={"page_size": 1, **params})
        assert page.status_code == 200
        heading = re.search(r"<dt>Artifacts</dt><dd>(\d+)</dd>", page.text)
        pager = re.search(r"Page \d+ of \d+ · (\d+) in all", page.text)
        assert heading and pager, page.text
        return int(heading.group(1)), int(pager.group(1))

    with registry(server) as client:
        shared = oci.push_image(client, repo, "shared")
        for i in range(3):
            oci.push_image(client, repo, f"v{i}")
        oci.push_manifest(client, f"{project}/multi", shared)
        oci.push_manifest(client, f"{project}/multi", oci.index_manifest([shared]), "latest")
    assert counted() == (4, 4)
    assert counted(q="v") == (4, 3)
    assert counted(page=3) == (4, 4)
    with registry(server) as client:
        gone = oci.push_image(client, repo, "gone")
        assert counted() == (5, 5)
        r = client.delete(f"/v2/{repo}/manifests/{gone.digest}")
        assert r.status_code == 202, oci.error_text(r)
    assert counted() == (4, 4)
    listed = api(server, "GET", f"/projects/{project}/repositories/app")
    assert listed.json()["artifact_count"] == 4


def test_a_maintainer_deletes_the_repository(server: Portside) -> None:
    maintainer = new_user(server)
    project = new_project(server, members={maintainer[0]: 4})
    with registry(server) as client:
        oci.push_image(client, f"{project}/gone", "v1")
    browser = Browser(server, maintainer)
    try:
        page = browser.get(repo_url(project, "gone"))
        assert f'action="{repo_url(project, "gone")}/-/delete"' in page.text
        assert browser.post(f"{repo_url(project, 'gone')}/-/delete", {}, csrf=False).status_code == 403
        assert api(server, "GET", f"/projects/{project}/repositories/gone").status_code == 200
        deleted = browser.post(f"{repo_url(project, 'gone')}/-/delete", {})
        assert deleted.status_code == 303 and deleted.headers["location"] == f"/projects/{project}/repositories"
        assert api(server, "GET", f"/projects/{project}/repositories/gone").status_code == 404
        assert browser.get(repo_url(project, "gone")).status_code == 404
    finally:
        browser.close()


def test_a_guest_sees_no_changes_offered_and_forged_ones_are_refused(server: Portside) -> None:
    guest = new_user(server)
    project = new_project(server, members={guest[0]: GUEST})
    with registry(server) as client:
        image = oci.push_image(client, f"{project}/app", "v1")
    browser = Browser(server, guest)
    try:
        for path in (repo_url(project), f"{repo_url(project)}/-/tags"):
            page = browser.get(path)
            assert page.status_code == 200 and tag_names(page.text) == ["v1"]
            assert "/-/delete" not in page.text and "/-/description" not in page.text
            assert "tag-delete" not in page.text and "confirm" not in page.text
        artifact = f"{repo_url(project)}/-/artifacts/{image.digest}"
        for path, form in (
            (f"{repo_url(project)}/-/description", {"description": "guest was here"}),
            (f"{repo_url(project)}/-/delete", {}),
            (f"{artifact}/tags/v1/delete", {"back": "repository"}),
        ):
            refused = browser.post(path, form)
            assert refused.status_code == 403, path
            assert "Not allowed" in refused.text
        body = api(server, "GET", f"/projects/{project}/repositories/app").json()
        assert body.get("description", "") == ""
        tags = api(server, "GET", f"/projects/{project}/repositories/app/artifacts/v1/tags").json()
        assert [t["name"] for t in tags] == ["v1"]
    finally:
        browser.close()


def test_a_limited_guest_browses_the_repository_it_may_list(server: Portside) -> None:
    limited = new_user(server)
    project = new_project(server, members={limited[0]: LIMITED_GUEST})
    with registry(server) as client:
        image = oci.push_image(client, f"{project}/app", "v1")
    assert api(server, "GET", f"/projects/{project}/repositories/app", who=limited).status_code == 403
    browser = Browser(server, limited)
    try:
        page = browser.get(repo_url(project))
        assert page.status_code == 200 and artifact_digests(page.text) == [image.digest]
        assert "tag-delete" not in page.text and "/-/description" not in page.text
        assert tag_names(browser.get(f"{repo_url(project)}/-/tags").text) == ["v1"]
        assert browser.get(f"{repo_url(project)}/-/artifacts/v1").status_code == 200
        assert browser.get(repo_url(project, "absent")).status_code == 403  # as the API answers it
    finally:
        browser.close()


def test_a_private_repository_looks_missing_to_strangers(server: Portside) -> None:
    private = new_project(server)
    missing = unique("p")
    with registry(server) as client:
        image = oci.push_image(client, f"{private}/app", "v1")
    stranger = Browser(server, new_user(server))
    anonymous = Browser(server, None)
    try:
        for browser in (stranger, anonymous):
            for tail in ("", "/-/tags", "/-/artifacts/v1", f"/-/artifacts/{image.digest}", "/-/artifacts/nope"):
                hidden = browser.get(repo_url(private) + tail)
                absent = browser.get(repo_url(missing) + tail)
                assert hidden.status_code == absent.status_code == 404, tail
                assert message_of(hidden.text) == message_of(absent.text).replace(missing, private)
                assert message_of(hidden.text) == f"project {private} not found"
                assert image.digest not in hidden.text
        for path in ("/-/delete", "/-/description", f"/-/artifacts/{image.digest}/tags/v1/delete"):
            hidden = stranger.post(repo_url(private) + path, {})
            absent = stranger.post(repo_url(missing) + path, {})
            assert hidden.status_code == absent.status_code == 404, path
            assert message_of(hidden.text) == message_of(absent.text).replace(missing, private)
        assert api(server, "GET", f"/projects/{private}/repositories/app/artifacts/v1").status_code == 200
    finally:
        stranger.close()
        anonymous.close()


def test_a_public_repository_is_open_to_anonymous_visitors_without_controls(server: Portside) -> None:
    project = new_project(server, public=True)
    with registry(server) as client:
        oci.push_image(client, f"{project}/app", "v1")
    anonymous = Browser(server, None)
    try:
        page = anonymous.get(repo_url(project))
        assert page.status_code == 200 and tag_names(page.text) == ["v1"]
        assert 'method="post"' not in page.text.split("<main", 1)[1]
        assert anonymous.post(f"{repo_url(project)}/-/delete", {}).status_code == 303  # to the sign-in page
        assert api(server, "GET", f"/projects/{project}/repositories/app").status_code == 200
    finally:
        anonymous.close()


def test_paths_below_a_repository_that_name_nothing_are_missing_pages(admin: Browser, server: Portside) -> None:
    project = new_project(server)
    with registry(server) as client:
        oci.push_image(client, f"{project}/app", "v1")
    for tail in ("/-/", "/-/nothing", "/-/artifacts", "/-/artifacts/v1/more", "/-/tags/extra"):
        assert admin.get(repo_url(project) + tail).status_code == 404, tail
    assert admin.get(repo_url(project, "absent")).status_code == 404
    assert "repository " in message_of(admin.get(repo_url(project, "absent")).text)


def test_the_pages_hold_no_inline_script_or_style(server: Portside, admin: Browser) -> None:
    project = new_project(server)
    with registry(server) as client:
        image = oci.push_image(client, f"{project}/app", "v1")
    for path in (repo_url(project), f"{repo_url(project)}/-/tags", f"{repo_url(project)}/-/artifacts/{image.digest}"):
        text = admin.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), path
        assert "<style" not in text and " style=" not in text, path
        assert not re.search(r"\son[a-z]+=", text), path
