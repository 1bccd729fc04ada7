"""The administration's security hub on a live server, over the scanned project the hub's
API tests use (tests/scan/scanning.py: a vulnerable image in two repositories, a fixed one
beside it): every finding listed worst first, narrowed by the form's fields (CVE id,
severity, CVSS range, fix, project, repository, tag, digest, package), paged, the results
block alone for htmx; past 1,000 findings the count stops and the pages go on; a filter the
service cannot read comes back as the form's error; the page is the system administrators'
only."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.scan.scanning import scanned_project, scanning_server
from tests.servers import Portside
from tests.ui.pages import ADMIN, api, unique
from tests.ui.test_admin import Browser

ORDER = ("Unknown", "Negligible", "Low", "Medium", "High", "Critical")
HUB = "/admin/security"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    with scanning_server(tmp_path_factory.mktemp("ui-hub") / "data") as started:
        yield started


@pytest.fixture(scope="module")
def project(server: Portside) -> dict[str, Any]:
    return scanned_project(server)


@pytest.fixture(scope="module")
def admin(server: Portside) -> Iterator[Browser]:
    browser = Browser(server, ADMIN)
    yield browser
    browser.close()


def rows(page: str) -> list[dict[str, str]]:
    """The findings table's rows: id, link, severity, package, artifact (text) and its link, tags."""
    found = []
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in page else ""
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        link = re.search(r'href="([^"]+)"', cells[0])
        artifact = re.search(r'<a href="([^"]+)">([^<]+)</a>', cells[6])
        assert artifact, row
        found.append(
            {
                "id": html.unescape(re.sub(r"<[^>]+>", "", cells[0]).strip()),
                "link": html.unescape(link.group(1)) if link else "",
                "severity": re.sub(r"<[^>]+>", "", cells[1]).strip(),
                "package": re.sub(r"<[^>]+>", "", cells[3]).strip(),
                "fixed": re.sub(r"<[^>]+>", "", cells[5]).strip(),
                "artifact": html.unescape(artifact.group(2)),
                "artifact_url": html.unescape(artifact.group(1)),
                "tags": ",".join(re.findall(r'<a href="[^"]+">([^<]+)</a>', cells[6].split("Tags:", 1)[-1]))
                if "Tags:" in cells[6]
                else "",
            }
        )
    return found


def listed(admin: Browser, **params: Any) -> tuple[int, str]:
    shown = admin.get(HUB, params=params)
    return shown.status_code, shown.text


def test_the_hub_lists_every_finding_worst_first_and_filters_them(admin: Browser, project: dict[str, Any]) -> None:
    name = project["name"]
    status, page = listed(admin)
    assert status == 200, page
    assert f'href="{HUB}" aria-current="page"' in page  # in the administration's navigation
    everything = rows(page)
    assert everything, "the registry holds findings"
    ranks = [ORDER.index(r["severity"]) for r in everything]
    assert ranks == sorted(ranks, reverse=True)

    status, page = listed(admin, project=name, page_size=100)
    mine = rows(page)
    assert status == 200 and mine and all(r["artifact"].startswith(f"{name}/") for r in mine)
    total = len(mine)
    assert f"Findings 1–{total} of {total}" in page

    # A CVE: in both repositories holding the vulnerable image, each with its tag and advisory.
    status, page = listed(admin, project=name, cve="CVE-2018-18074")
    found = rows(page)
    short = project["vulnerable"].removeprefix("sha256:")[:12]
    assert sorted((r["artifact"], r["tags"]) for r in found) == [
        (f"{name}/app@sha256:{short}", "v1"),
        (f"{name}/other@sha256:{short}", "copy"),
    ]
    app = next(r for r in found if r["tags"] == "v1")
    assert app["artifact_url"] == f"/projects/{name}/repositories/app/-/artifacts/{project['vulnerable']}"
    assert app["link"].startswith(("https://", "http://")) and app["fixed"] == "2.20.0"
    assert app["package"] == "requests"
    assert f'href="/projects/{name}/repositories/app/-/artifacts/v1"' in page

    # Severity, package, tag, repository, digest, fix, CVSS.
    severity = mine[0]["severity"]
    _, page = listed(admin, project=name, severity=severity.lower(), page_size=100)
    assert {r["severity"] for r in rows(page)} == {severity}
    assert '<option value="' + severity + '" selected>' in page
    absent = next(label for label in reversed(ORDER) if label not in {r["severity"] for r in mine})
    _, page = listed(admin, project=name, severity=absent)
    assert rows(page) == [] and "No finding matches these filters." in page
    _, page = listed(admin, project=name, package="reque")  # a part of the name
    assert sorted({(r["package"], r["id"]) for r in rows(page)}) == [
        ("requests", "CVE-2018-18074"),
        ("requests", "CVE-2023-32681"),
    ]
    _, page = listed(admin, tag="v1", package="requests", repository=f"{name}/app")
    assert {(r["artifact"].split("@")[0], r["id"]) for r in rows(page)} == {
        (f"{name}/app", "CVE-2018-18074"),
        (f"{name}/app", "CVE-2023-32681"),
    }
    _, page = listed(admin, tag="v2", package="requests", project=name)
    assert rows(page) == [] and "No finding matches these filters." in page
    _, page = listed(admin, digest=project["vulnerable"], package="requests")
    assert len(rows(page)) == 4
    _, page = listed(admin, project=name, status="fixed", page_size=100)
    assert rows(page) and all(r["fixed"] != "not fixed" for r in rows(page))
    _, page = listed(admin, project=name, status="affected", page_size=100)
    assert all(r["fixed"] == "not fixed" for r in rows(page))
    _, page = listed(admin, project=name, cvss_from="10", cvss_to="10", page_size=100)
    assert len(rows(page)) < total

    # htmx asks for the results block alone.
    block = admin.get(
        HUB, params={"project": name, "cve": "CVE-2018-18074"}, headers={"HX-Request": "true", "HX-Target": "results"}
    )
    assert block.status_code == 200 and "<html" not in block.text and "<form" not in block.text
    assert len(rows(block.text)) == 2


def test_the_hub_pages_through_the_findings(admin: Browser, project: dict[str, Any]) -> None:
    name = project["name"]
    _, page = listed(admin, project=name, page_size=100)
    total = len(rows(page))
    assert total > 2
    _, first = listed(admin, project=name, page_size=2)
    assert len(rows(first)) == 2 and 'rel="next"' in first and 'rel="prev"' not in first
    assert f"Findings 1–2 of {total}" in first
    next_url = html.unescape(re.search(r'<a href="([^"]+)" rel="next"', first).group(1))  # type: ignore[union-attr]
    assert "page=2" in next_url and f"project={name}" in next_url
    second = admin.get(next_url).text
    assert len(rows(second)) == 2 and 'rel="prev"' in second and f"Findings 3–4 of {total}" in second
    assert {r["id"] + r["artifact"] for r in rows(first)}.isdisjoint({r["id"] + r["artifact"] for r in rows(second)})
    last_page = (total + 1) // 2
    _, last = listed(admin, project=name, page_size=2, page=last_page)
    assert 'rel="next"' not in last and 'rel="prev"' in last


def test_filters_the_service_refuses_are_the_forms_errors(admin: Browser, project: dict[str, Any]) -> None:
    for params, field, words in (
        ({"cvss_from": "eleven"}, "cvss_from", "a CVSS score is a number from 0 to 10"),
        ({"cvss_from": "9", "cvss_to": "2"}, "cvss_to", "ends below where it starts"),
        ({"severity": "Dreadful"}, "severity", "unknown severity"),
        ({"status": "maybe"}, "status", "fixed or affected"),
        ({"project": "no-such-project"}, "project", "there is no project named no-such-project"),
    ):
        status, page = listed(admin, **params)
        assert status == 400, (params, page)
        assert f'id="{field}-error" role="alert"' in page and words in html.unescape(page), params
        assert 'aria-invalid="true"' in page
        assert rows(page) == []


def test_the_hub_is_the_administrators_only(server: Portside, project: dict[str, Any]) -> None:
    developer = Browser(server, project["developer"])
    try:
        refused = developer.get(HUB)
        assert refused.status_code == 403
        assert "CVE-" not in refused.text and "<table" not in refused.text
        assert f'href="{HUB}"' not in developer.get("/projects").text
    finally:
        developer.close()
    with httpx.Client(base_url=server.url, timeout=60) as client:
        sent = client.get(HUB)
        assert sent.status_code == 303 and sent.headers["location"].startswith("/sign-in")


def _copies(server: Portside, source: str, count: int) -> str:
    """A new project whose `count` repositories each hold the image `source` names (its
    blobs mounted, nothing uploaded again; its findings are the digest's, so no scan): its name."""
    name = unique("many")
    assert api(server, "POST", "/projects", json={"project_name": name}).status_code == 201
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as client:
        repository, tag = source.split(":")
        got = client.get(
            f"/v2/{repository}/manifests/{tag}", headers={"accept": "application/vnd.oci.image.manifest.v1+json"}
        )
        assert got.status_code == 200, got.text
        document = json.loads(got.content)
        digests = [document["config"]["digest"], *(layer["digest"] for layer in document["layers"])]
        for number in range(count):
            copy = f"{name}/r{number}"
            for digest in digests:
                mounted = client.post(f"/v2/{copy}/blobs/uploads/", params={"mount": digest, "from": repository})
                assert mounted.status_code == 201, mounted.text
            put = client.put(
                f"/v2/{copy}/manifests/v1", content=got.content, headers={"content-type": got.headers["content-type"]}
            )
            assert put.status_code == 201, put.text
    return name


def test_past_a_thousand_findings_the_count_stops_and_paging_goes_on(
    server: Portside, admin: Browser, project: dict[str, Any]
) -> None:
    # Two findings in each copy of v1: 1,000 of them, beside the project's own four.
    _copies(server, f"{project['name']}/app:v1", 500)
    _, page = listed(admin)
    assert "Findings 1–25 of more than 1,000" in page and 'rel="next"' in page
    _, full = listed(admin, page=40)
    assert "Findings 976–1000 of more than 1,000" in full and 'rel="next"' in full
    _, beyond = listed(admin, page=41)
    assert len(rows(beyond)) == 4 and "Findings 1001–1004 of more than 1,000" in beyond
    assert 'rel="next"' not in beyond and 'rel="prev"' in beyond
    # A filter that narrows below the limit counts exactly again.
    _, narrowed = listed(admin, project=project["name"], page_size=100)
    assert "more than" not in narrowed
