"""The artifact page on a live server: an image's config and its layers beside the
history that made them, annotations, an index's platform picker, the referrers tree
(signatures, SBOMs, their own signatures, cosign's tag scheme), tags added and deleted,
an artifact deleted and copied to another project, and what guests and strangers get."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import unescape
from typing import Any

import pytest

from tests.api import oci
from tests.servers import Portside
from tests.ui.test_repositories import (
    ADMIN,
    DEVELOPER,
    GUEST,
    Browser,
    api,
    message_of,
    new_project,
    new_user,
    registry,
    repo_url,
    tag_names,
    unique,
)

COSIGN_SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json"
NOTATION_SIGNATURE = "application/vnd.cncf.notary.signature"
SPDX = "application/spdx+json"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    running = Portside(
        data_dir=tmp_path_factory.mktemp("ui-artifacts") / "data",
        env={"PORTSIDE_LOGIN_FAILURE_LIMIT": "100000"},
        open_registry=False,
    )
    running.start()
    yield running
    running.stop()


@pytest.fixture
def admin(server: Portside) -> Iterator[Browser]:
    browser = Browser(server, ADMIN)
    yield browser
    browser.close()


def artifact_path(project: str, reference: str, repository: str = "app") -> str:
    return f"{repo_url(project, repository)}/-/artifacts/{reference}"


def section(page: str, title_id: str) -> str:
    found = re.search(rf'<section[^>]*aria-labelledby="{title_id}"[^>]*>(.*?)</section>', page, re.S)
    assert found, f"no section {title_id}"
    return found.group(1)


def first_code(page: str, term: str) -> str:
    """The code shown for `term` in a list of facts."""
    found = re.search(rf"{term}</dt><dd><code>(.*?)</code>", page)
    assert found, term
    return unescape(found.group(1))


def built_image() -> tuple[oci.Manifest, list[oci.Blob]]:
    """An image whose config says how it runs and how it was built, with empty steps."""
    layers = [oci.layer(300), oci.layer(700)]
    config: dict[str, Any] = {
        "architecture": "arm64",
        "variant": "v8",
        "os": "linux",
        "created": "2024-05-01T10:00:00Z",
        "author": "Team Build <build@example.com>",
        "config": {
            "User": "app:app",
            "WorkingDir": "/srv",
            "Env": ["PATH=/usr/local/bin:/usr/bin", "MODE=production"],
            "Entrypoint": ["/usr/bin/tini", "--"],
            "Cmd": ["serve", "--port", "8080"],
            "ExposedPorts": {"8080/tcp": {}, "9090/udp": {}},
            "Volumes": {"/data": {}},
            "Labels": {"org.opencontainers.image.source": "https://example.com/app", "tier": "<web>"},
        },
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [
            {"created": "2024-05-01T09:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:0a1b2c in / "},
            {"created": "2024-05-01T09:00:01Z", "created_by": '/bin/sh -c #(nop)  CMD ["sh"]', "empty_layer": True},
            {
                "created": "2024-05-01T09:30:00Z",
                "created_by": "RUN /bin/sh -c apk add --no-cache " + " ".join(f"package{i}" for i in range(30)),
                "comment": "buildkit.dockerfile.v0",
            },
            {"created": "2024-05-01T09:31:00Z", "created_by": "ENV MODE=production", "empty_layer": True},
        ],
    }
    manifest = oci.image_manifest(
        oci.Blob(oci.canonical(config), oci.OCI_CONFIG),
        layers,
        annotations={"org.opencontainers.image.title": "the app", "com.example.note": "<b>bold?</b>"},
    )
    return manifest, layers


def test_an_image_shows_its_config_and_each_layer_beside_the_step_that_made_it(
    server: Portside, admin: Browser
) -> None:
    project = new_project(server)
    image, layers = built_image()
    with registry(server) as client:
        oci.push_manifest(client, f"{project}/app", image, "1.0")
    page = admin.get(artifact_path(project, "1.0"))
    assert page.status_code == 200
    assert f'value="{project}/app@{image.digest}"' in page.text  # the full reference, to copy
    config = section(page.text, "config-title")
    for shown in (
        "linux/arm64/v8",
        '<time datetime="2024-05-01T10:00:00+00:00">2024-05-01 10:00 UTC</time>',
        "Team Build &lt;build@example.com&gt;",
        "<code>app:app</code>",
        "<code>/srv</code>",
        "<code>8080/tcp</code>",
        "<code>9090/udp</code>",
        "<code>/data</code>",
        "<code>PATH=/usr/local/bin:/usr/bin</code>",
        "<code>MODE=production</code>",
        "<code>org.opencontainers.image.source</code></dt><dd>https://example.com/app</dd>",
        "<dd>&lt;web&gt;</dd>",
    ):
        assert shown in config, shown
    assert first_code(config, "Entrypoint") == '["/usr/bin/tini", "--"]'
    assert first_code(config, "Command") == '["serve", "--port", "8080"]'
    table = section(page.text, "layers-title")
    rows = re.findall(r"<tr(?: class=\"empty-layer\")?>(.*?)</tr>", table.split("<tbody>", 1)[1], re.S)
    assert len(rows) == 4
    # Docker's `#(nop)` prefix is trimmed in the row; the step's whole text stays beside it.
    assert "<summary><code>ADD file:0a1b2c in /</code></summary>" in rows[0]
    assert "<pre>/bin/sh -c #(nop) ADD file:0a1b2c in /</pre>" in rows[0]
    assert oci.digest(layers[0].data)[:19] in rows[0] and "300 B" in rows[0]
    assert '<time datetime="2024-05-01T09:00:00+00:00">' in rows[0]
    assert "CMD [&#34;sh&#34;]" in rows[1] and '<span class="badge">empty</span>' in rows[1]
    assert "sha256:" not in rows[1]
    # A long command is cut in the row and whole in its disclosure.
    assert '<details class="command">' in rows[2] and "package29</pre>" in rows[2]
    assert oci.digest(layers[1].data)[:19] in rows[2] and "700 B" in rows[2] and "buildkit.dockerfile.v0" in rows[2]
    assert "ENV MODE=production" in rows[3] and '<span class="badge">empty</span>' in rows[3]
    annotations = section(page.text, "annotations-title")
    assert "<code>com.example.note</code></dt><dd>&lt;b&gt;bold?&lt;/b&gt;</dd>" in annotations
    assert "Image" in page.text.split("<h1>", 1)[1].split("</h1>", 1)[0]
    # The same page by digest.
    assert section(admin.get(artifact_path(project, image.digest)).text, "layers-title") == table


def test_an_artifact_without_an_image_config_lists_its_blobs(server: Portside, admin: Browser) -> None:
    project = new_project(server)
    payload = oci.Blob(b"chart bytes", "application/vnd.cncf.helm.chart.content.v1.tar+gzip")
    chart = oci.image_manifest(oci.Blob(b'{"name":"app"}', "application/vnd.cncf.helm.config.v1+json"), [payload])
    with registry(server) as client:
        oci.push_manifest(client, f"{project}/chart", chart, "0.1.0")
    page = admin.get(artifact_path(project, "0.1.0", "chart"))
    assert page.status_code == 200
    assert "Helm chart" in page.text and 'id="config-title"' not in page.text
    blobs = section(page.text, "layers-title")
    assert "Blobs" in blobs and payload.digest[:19] in blobs and "application/vnd.cncf.helm.chart" in blobs


def test_a_config_too_large_to_read_is_named_with_the_reason(server: Portside, admin: Browser) -> None:
    project = new_project(server)
    padding = "x" * (1024 * 1024 + 10)
    document = {"os": "linux", "architecture": "amd64", "config": {"Labels": {"pad": padding}}}
    config = oci.Blob(oci.canonical(document), oci.OCI_CONFIG)
    with registry(server) as client:
        oci.push_manifest(client, f"{project}/app", oci.image_manifest(config), "big")
    page = admin.get(artifact_path(project, "big"))
    assert page.status_code == 200
    assert f"The image config is {config.size} bytes; configs are shown up to 1 MiB." in page.text
    assert padding[:100] not in page.text


def test_an_index_offers_its_platforms(server: Portside, admin: Browser) -> None:
    project = new_project(server)
    amd64 = oci.image_manifest(config=oci.config_blob(platform=("linux", "amd64")))
    arm64 = oci.image_manifest(config=oci.config_blob(platform=("linux", "arm64")))
    document = {
        "schemaVersion": 2,
        "mediaType": oci.OCI_INDEX,
        "manifests": [
            amd64.descriptor(platform={"os": "linux", "architecture": "amd64"}),
            arm64.descriptor(
                platform={"os": "linux", "architecture": "arm64", "variant": "v8"},
                annotations={"com.example.flavour": "small"},
            ),
        ],
        "annotations": {"org.opencontainers.image.version": "2.0"},
    }
    index = oci.Manifest(json.dumps(document).encode(), oci.OCI_INDEX, [], [amd64, arm64])
    with registry(server) as client:
        oci.push_manifest(client, f"{project}/app", index, "2.0")
    page = admin.get(artifact_path(project, "2.0"))
    platforms = section(page.text, "platforms-title")
    assert f'<option value="{amd64.digest}">linux/amd64 · {amd64.digest[:19]}</option>' in platforms
    assert f'<option value="{arm64.digest}">linux/arm64/v8 · {arm64.digest[:19]}</option>' in platforms
    assert f'<a href="{artifact_path(project, arm64.digest)}">linux/arm64/v8</a>' in platforms
    assert "<code>com.example.flavour</code> = small" in platforms
    assert "<code>org.opencontainers.image.version</code></dt><dd>2.0</dd>" in page.text
    # The picker's form, sent without JavaScript, goes to the chosen platform's page.
    picked = admin.get(artifact_path(project, "2.0"), params={"platform": arm64.digest})
    assert picked.status_code == 303 and picked.headers["location"] == artifact_path(project, arm64.digest)
    child = admin.get(picked.headers["location"])
    assert child.status_code == 200 and "linux/arm64" in section(child.text, "config-title")
    assert admin.get(artifact_path(project, "2.0"), params={"platform": oci.EMPTY_DIGEST}).status_code == 404


def test_the_referrers_tree_shows_signatures_sboms_and_their_own_referrers(server: Portside, admin: Browser) -> None:
    project = new_project(server)
    repo = f"{project}/app"
    with registry(server) as client:
        image = oci.push_image(client, repo, "v1")
        signature = oci.artifact_manifest(COSIGN_SIGNATURE, subject=image)
        sbom = oci.artifact_manifest(
            SPDX, subject=image, annotations={"org.opencontainers.image.created": "2024-06-01T00:00:00Z"}
        )
        sbom_signature = oci.artifact_manifest(NOTATION_SIGNATURE, subject=sbom)
        for manifest in (signature, sbom, sbom_signature):
            oci.push_manifest(client, repo, manifest)
        # cosign's older scheme: a tag named after the digest it signs.
        scheme = oci.artifact_manifest("application/vnd.example.legacy")
        algorithm, hex_digits = image.digest.split(":")
        oci.push_manifest(client, repo, scheme, f"{algorithm}-{hex_digits}.sig")
    page = admin.get(artifact_path(project, "v1"))
    tree = section(page.text, "referrers-title")
    top = re.search(r'<ul class="referrers">(.*)</ul>\s*<h3>', tree, re.S)
    assert top, tree
    items = top.group(1)
    assert f'href="{artifact_path(project, signature.digest)}"' in items
    assert f'href="{artifact_path(project, sbom.digest)}"' in items
    assert "Signature (cosign)" in items and "SBOM (SPDX)" in items and 'datetime="2024-06-01T00:00:00+00:00"' in items
    # The SBOM's own signature sits inside the SBOM's entry.
    sbom_entry = items.split(f'href="{artifact_path(project, sbom.digest)}"', 1)[1]
    nested = re.search(r"<ul>(.*?)</ul>", sbom_entry, re.S)
    assert nested and f'href="{artifact_path(project, sbom_signature.digest)}"' in nested.group(1)
    assert "Signature (Notation)" in nested.group(1)
    assert f'href="{artifact_path(project, sbom_signature.digest)}"' not in items.split(f"{sbom.digest}", 1)[0]
    legacy = tree.split("<h3>By cosign's tag scheme</h3>", 1)[1]
    assert f'href="{artifact_path(project, scheme.digest)}"' in legacy and f"{algorithm}-{hex_digits}.sig" in legacy
    # Each referrer's page says what it refers to.
    signed = admin.get(artifact_path(project, sbom_signature.digest))
    assert signed.status_code == 200 and "Signature (Notation)" in signed.text
    assert f'<a href="{artifact_path(project, sbom.digest)}" title="{sbom.digest}">' in signed.text
    legacy_page = admin.get(artifact_path(project, scheme.digest))
    assert "Signature (cosign)" in legacy_page.text
    assert f'<a href="{artifact_path(project, image.digest)}" title="{image.digest}">' in legacy_page.text


def test_the_referrers_tree_stops_at_its_depth_and_keeps_to_its_repository(server: Portside, admin: Browser) -> None:
    """Referrers of referrers, four levels deep and no deeper (the page says more exist),
    siblings in the order they were pushed; the same image's referrers in another
    repository are that repository's."""
    project = new_project(server)
    repo, other = f"{project}/app", f"{project}/other"
    with registry(server) as client:
        image = oci.push_image(client, repo, "v1")
        chain = [image]
        for level in range(5):
            chain.append(oci.artifact_manifest(COSIGN_SIGNATURE, subject=chain[-1]))
            oci.push_manifest(client, repo, chain[-1])
            if level == 0:
                sibling = oci.artifact_manifest(SPDX, subject=image)
                oci.push_manifest(client, repo, sibling)
        oci.push_manifest(client, other, image)
        foreign = oci.artifact_manifest(NOTATION_SIGNATURE, subject=image)
        oci.push_manifest(client, other, foreign)

    def tree_of(reference: str, repository: str = "app") -> str:
        page = admin.get(artifact_path(project, reference, repository))
        assert page.status_code == 200
        return section(page.text, "referrers-title")

    def shown(tree: str, manifest: oci.Manifest, repository: str = "app") -> bool:
        return f'href="{artifact_path(project, manifest.digest, repository)}"' in tree

    tree = tree_of("v1")
    assert [shown(tree, m) for m in chain[1:]] == [True, True, True, True, False]
    assert "More referrers exist than are shown here." in tree
    assert shown(tree, sibling) and tree.index(chain[1].digest) < tree.index(sibling.digest)
    assert not shown(tree, foreign) and "Signature (Notation)" not in tree
    # From the second level down, the rest of the chain fits.
    lower = tree_of(chain[2].digest)
    assert [shown(lower, m) for m in chain[3:]] == [True, True, True]
    assert "More referrers exist" not in lower and not shown(lower, sibling)
    elsewhere = tree_of(image.digest, "other")
    assert shown(elsewhere, foreign, "other") and not shown(elsewhere, chain[1], "other")


def test_tags_are_added_and_deleted_from_the_page(server: Portside) -> None:
    developer = new_user(server)
    maintainer = new_user(server)
    project = new_project(server, members={developer[0]: DEVELOPER, maintainer[0]: 4})
    with registry(server) as client:
        image = oci.push_image(client, f"{project}/app", "v1")
    dev, main = Browser(server, developer), Browser(server, maintainer)
    page_path = artifact_path(project, image.digest)
    tags_api = f"/projects/{project}/repositories/app/artifacts/{image.digest}/tags"
    try:
        page = dev.get(page_path)
        assert f'action="{page_path}/tags"' in page.text and "tag-delete" not in page.text  # may tag, not untag
        added = dev.post(f"{page_path}/tags", {"tag": "stable"})
        assert added.status_code == 303 and added.headers["location"] == page_path
        assert "Tag stable added." in dev.get(page_path).text
        assert sorted(t["name"] for t in api(server, "GET", tags_api).json()) == ["stable", "v1"]
        twice = dev.post(f"{page_path}/tags", {"tag": "stable"})
        assert twice.status_code == 409 and 'id="tag-error"' in twice.text and "already exists" in twice.text
        assert 'value="stable"' in twice.text  # the form keeps what was typed
        bad = dev.post(f"{page_path}/tags", {"tag": "no spaces!"})
        assert bad.status_code == 400 and "invalid tag" in bad.text
        assert dev.post(f"{page_path}/tags", {"tag": "x"}, csrf=False).status_code == 403
        assert dev.post(f"{page_path}/tags/v1/delete", {}).status_code == 403  # developers may not untag
        shown = main.get(page_path)
        assert f'action="{page_path}/tags/stable/delete"' in shown.text
        deleted = main.post(f"{page_path}/tags/stable/delete", {"back": "repository"})
        assert deleted.status_code == 303 and deleted.headers["location"] == repo_url(project)
        assert [t["name"] for t in api(server, "GET", tags_api).json()] == ["v1"]
        from_tags = main.post(f"{page_path}/tags/v1/delete", {"back": "tags"})
        assert from_tags.headers["location"] == f"{repo_url(project)}/-/tags"
        assert api(server, "GET", tags_api).json() == []
        assert main.post(f"{page_path}/tags/v1/delete", {}).status_code == 404  # already gone
        assert "no tags" in main.get(page_path).text
    finally:
        dev.close()
        main.close()


def test_an_artifact_is_deleted_after_confirmation(server: Portside, admin: Browser) -> None:
    project = new_project(server)
    with registry(server) as client:
        keep = oci.push_image(client, f"{project}/app", "keep")
        doomed = oci.push_image(client, f"{project}/app", "doomed")
    page = admin.get(artifact_path(project, "doomed"))
    delete = section(page.text, "delete-title")
    assert (
        '<details class="confirm">' in delete and f'action="{artifact_path(project, doomed.digest)}/delete"' in delete
    )
    assert admin.post(f"{artifact_path(project, doomed.digest)}/delete", {}, csrf=False).status_code == 403
    gone = admin.post(f"{artifact_path(project, doomed.digest)}/delete", {})
    assert gone.status_code == 303 and gone.headers["location"] == repo_url(project)
    after = admin.get(gone.headers["location"])
    assert f"Artifact {doomed.digest[:19]} deleted." in after.text
    artifacts = api(server, "GET", f"/projects/{project}/repositories/app/artifacts").json()
    assert [a["digest"] for a in artifacts] == [keep.digest]
    assert admin.get(artifact_path(project, doomed.digest)).status_code == 404


def test_a_child_of_an_index_is_not_deleted_and_the_page_says_why(server: Portside, admin: Browser) -> None:
    project = new_project(server)
    with registry(server) as client:
        child = oci.image_manifest()
        oci.push_manifest(client, f"{project}/app", oci.index_manifest([child]), "multi")
    refused = admin.post(f"{artifact_path(project, child.digest)}/delete", {})
    assert refused.status_code == 412 and 'role="alert"' in refused.text
    assert api(server, "GET", f"/projects/{project}/repositories/app/artifacts/{child.digest}").status_code == 200


def test_an_artifact_is_copied_to_another_project(server: Portside) -> None:
    who = new_user(server)
    source = new_project(server, members={who[0]: GUEST})
    target = new_project(server, members={who[0]: DEVELOPER})
    private = new_project(server)
    with registry(server) as client:
        image = oci.push_image(client, f"{source}/app", "v1")
    browser = Browser(server, who)
    copy = f"{artifact_path(source, image.digest)}/copy"
    try:
        assert f'action="{copy}"' in browser.get(artifact_path(source, "v1")).text
        copied = browser.post(copy, {"target_project": target, "target_repository": "mirror/app"})
        assert copied.status_code == 303
        assert copied.headers["location"] == artifact_path(target, image.digest, "mirror/app")
        landed = browser.get(copied.headers["location"])
        assert landed.status_code == 200 and f"Copied to {target}/mirror/app." in landed.text
        body = api(server, "GET", f"/projects/{target}/repositories/mirror%252Fapp/artifacts/{image.digest}").json()
        assert [t["name"] for t in body["tags"]] == ["v1"]
        again = browser.post(copy, {"target_project": target, "target_repository": "mirror/app"})
        assert again.status_code == 409 and 'id="copy-error"' in again.text
        missing = unique("p")
        for name in (private, missing):  # a project the user may not see is a missing one
            refused = browser.post(copy, {"target_project": name, "target_repository": "app"})
            assert refused.status_code == 404 and f"project {name} not found" in refused.text
            assert 'id="copy-error"' in refused.text and f'value="{name}"' in refused.text
        into_source = browser.post(copy, {"target_project": source, "target_repository": "other"})
        assert into_source.status_code == 403  # a guest may not push here
        assert api(server, "GET", f"/projects/{source}/repositories/other").status_code == 404
        assert api(server, "GET", f"/projects/{private}/repositories/app").status_code == 404
    finally:
        browser.close()


def test_a_guest_sees_no_controls_and_forged_changes_change_nothing(server: Portside) -> None:
    guest = new_user(server)
    project = new_project(server, members={guest[0]: GUEST})
    with registry(server) as client:
        image = oci.push_image(client, f"{project}/app", "v1")
    browser = Browser(server, guest)
    page_path = artifact_path(project, image.digest)
    try:
        page = browser.get(page_path)
        assert page.status_code == 200 and tag_names(page.text) == ["v1"]
        assert f'action="{page_path}/tags"' not in page.text and "tag-delete" not in page.text
        assert f'action="{page_path}/delete"' not in page.text and 'id="delete-title"' not in page.text
        for path, form in (
            (f"{page_path}/tags", {"tag": "forged"}),
            (f"{page_path}/tags/v1/delete", {}),
            (f"{page_path}/delete", {}),
        ):
            refused = browser.post(path, form)
            assert refused.status_code == 403, path
        artifact = api(server, "GET", f"/projects/{project}/repositories/app/artifacts/{image.digest}").json()
        assert [t["name"] for t in artifact["tags"]] == ["v1"]
    finally:
        browser.close()


def test_a_private_artifact_looks_missing_to_strangers(server: Portside) -> None:
    private = new_project(server)
    missing = unique("p")
    with registry(server) as client:
        image = oci.push_image(client, f"{private}/app", "v1")
        oci.push_manifest(client, f"{private}/app", oci.artifact_manifest(COSIGN_SIGNATURE, subject=image))
    stranger = Browser(server, new_user(server))
    try:
        for tail in ("v1", image.digest, f"{image.digest}?platform={image.digest}"):
            hidden = stranger.get(artifact_path(private, tail))
            absent = stranger.get(artifact_path(missing, tail))
            assert hidden.status_code == absent.status_code == 404
            assert message_of(hidden.text) == message_of(absent.text).replace(missing, private)
            assert image.digest not in hidden.text.replace(tail, "")
        for action, form in (("tags", {"tag": "x"}), ("delete", {}), ("copy", {"target_project": missing})):
            hidden = stranger.post(f"{artifact_path(private, image.digest)}/{action}", form)
            absent = stranger.post(f"{artifact_path(missing, image.digest)}/{action}", form)
            assert hidden.status_code == absent.status_code == 404, action
            assert message_of(hidden.text) == message_of(absent.text).replace(missing, private)
        assert api(server, "GET", f"/projects/{private}/repositories/app/artifacts/v1").status_code == 200
    finally:
        stranger.close()


def test_pull_commands_by_tag_and_by_digest(server: Portside, admin: Browser) -> None:
    project = new_project(server)
    with registry(server) as client:
        image = oci.push_image(client, f"{project}/app", "3.1")
    page = admin.get(artifact_path(project, image.digest))
    host = server.url.split("://", 1)[1]
    pull = section(page.text, "pull-title")
    assert f'value="docker pull {host}/{project}/app:3.1"' in pull
    assert f'value="oras pull --plain-http {host}/{project}/app@{image.digest}"' in pull
    assert f'value="skopeo copy --src-tls-verify=false docker://{host}/{project}/app@{image.digest} ' in pull
    # Opened by a tag, the page pulls by that tag.
    with registry(server) as client:
        oci.put_manifest(client, f"{project}/app", "4.0", image)
    by_tag = section(admin.get(artifact_path(project, "4.0")).text, "pull-title")
    assert f'value="podman pull --tls-verify=false {host}/{project}/app:4.0"' in by_tag
