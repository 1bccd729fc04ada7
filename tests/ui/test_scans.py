"""The scanning pages on a live server, with the vulnerability database imported from the
fixtures and a Debian 12 image with a vulnerable Python package scanned through the API:
an artifact's Vulnerabilities tab (histogram, filters, the table, its CSV), its SBOM tab
(packages and both documents), the severity badges of the repository's list, and the
administration's database status and scan-all; a guest reads all of it but is offered no
scan, and a stranger to the private project is told what a missing one tells."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from html import unescape
from typing import Any

import pytest

from tests.api import oci
from tests.scan.scanning import PYTHON_PACKAGE, REPORT_MIME, scanning_server, vulnerable_image, wait_for_scan
from tests.scan.test_api_scanning import api as api_client
from tests.servers import Portside
from tests.ui.test_repositories import (
    ADMIN,
    GUEST,
    Browser,
    api,
    message_of,
    new_project,
    new_user,
    registry,
    repo_url,
    unique,
)

MAINTAINER = 4
SEVERITIES = ("Critical", "High", "Medium", "Low", "Negligible", "Unknown")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    data_dir = tmp_path_factory.mktemp("ui-scans") / "data"
    with scanning_server(data_dir, {"PORTSIDE_LOGIN_FAILURE_LIMIT": "100000"}) as started:
        yield started


@pytest.fixture(scope="module")
def scanned(server: Portside) -> dict[str, Any]:
    """A private project holding the scanned image (`v1`, vulnerabilities and SBOMs) and an
    unscanned one (`plain`); a guest, a maintainer and a stranger; the API's report."""
    guest, maintainer, stranger = new_user(server), new_user(server), new_user(server)
    project = new_project(server, members={guest[0]: GUEST, maintainer[0]: MAINTAINER})
    image = vulnerable_image()
    with registry(server) as client:
        oci.push_manifest(client, f"{project}/app", image, "v1")
        plain = oci.push_image(client, f"{project}/app", "plain")
    path = f"/projects/{project}/repositories/app/artifacts/{image.digest}"
    with api_client(server) as client:
        r = client.post(f"{path}/scan", json={"scan_type": "sbom"})
        assert r.status_code == 202, r.text
        artifact = wait_for_scan(client, path, "sbom_overview")
        report = client.get(f"{path}/additions/vulnerabilities").json()[REPORT_MIME]
    assert artifact["sbom_overview"]["scan_status"] == "Success", artifact
    return {
        "project": project,
        "digest": image.digest,
        "plain": plain.digest,
        "guest": guest,
        "maintainer": maintainer,
        "stranger": stranger,
        "overview": artifact["scan_overview"][REPORT_MIME],
        "vulnerabilities": report["vulnerabilities"],
        "spdx_digest": artifact["sbom_overview"]["sbom_digest"],
        "api_path": path,
    }


@pytest.fixture(scope="module")
def admin(server: Portside) -> Iterator[Browser]:
    browser = Browser(server, ADMIN)
    yield browser
    browser.close()


def tab(scanned: dict[str, Any], name: str, digest: str | None = None) -> str:
    return f"{repo_url(scanned['project'])}/-/artifacts/{digest or scanned['digest']}/{name}"


def text_of(fragment: str) -> str:
    return unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def raw_rows(page: str, css_class: str) -> list[list[str]]:
    """The cells of a table's body, as HTML."""
    found = re.search(rf'<table class="{css_class}">.*?<tbody>(.*?)</tbody>', page, re.S)
    if found is None:
        return []
    return [
        re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in re.findall(r"<tr>(.*?)</tr>", found.group(1), re.S)
    ]


def table_rows(page: str, css_class: str) -> list[list[str]]:
    return [[text_of(c) for c in row] for row in raw_rows(page, css_class)]


def finding_rows(page: str) -> list[tuple[str, ...]]:
    """The findings table: id, package, installed, fixed (empty when not fixed), severity, CVSS."""
    out: list[tuple[str, ...]] = []
    for c in raw_rows(page, "findings"):
        package = re.search(r'<span class="package-name">(.*?)</span>', c[1])
        assert package, c[1]
        fixed = "" if "not fixed" in c[3] else text_of(c[3])
        cvss = text_of(c[5])
        out.append(
            (
                text_of(c[0]),
                unescape(package.group(1)),
                text_of(c[2]),
                fixed,
                text_of(c[4]),
                "" if cvss == "—" else cvss,
            )
        )
    return out


def histogram(page: str) -> dict[str, int]:
    found = re.search(r'<table class="severity-histogram">.*?<tbody>(.*?)</tbody>', page, re.S)
    assert found, page
    pairs = re.findall(
        r'<a href="[^"]*" class="severity-link">(\w+)</a></th>\s*<td class="num">(\d+)</td>', found.group(1)
    )
    return {label: int(count) for label, count in pairs}


def scan_forms(page: str) -> list[str]:
    return re.findall(r'<form class="scan-now" method="post" action="([^"]+)"', page)


def test_a_guest_reads_the_report_and_the_sbom_but_is_offered_no_scan(
    server: Portside, scanned: dict[str, Any]
) -> None:
    guest = Browser(server, scanned["guest"])
    maintainer = Browser(server, scanned["maintainer"])
    try:
        page = guest.get(tab(scanned, "vulnerabilities"))
        assert page.status_code == 200, page.text
        # The histogram's counts and the table's rows are the API's report.
        counts = scanned["overview"]["summary"]["summary"]
        assert histogram(page.text) == {s: counts.get(s, 0) for s in SEVERITIES}
        rows = finding_rows(page.text)
        assert sorted(r[0] for r in rows) == sorted(v["id"] for v in scanned["vulnerabilities"])
        python_ids = {r[0] for r in rows if r[1] == PYTHON_PACKAGE["package"]}
        assert python_ids and python_ids <= {v["id"] for v in scanned["vulnerabilities"]}
        assert "Vulnerability database updated" in page.text
        assert scan_forms(page.text) == []
        # A scan the guest sends anyway is refused by the service.
        forged = guest.post(tab(scanned, "scan"), {"scan_type": "vulnerability"})
        assert forged.status_code == 403, forged.text

        sbom = guest.get(tab(scanned, "sbom"))
        assert sbom.status_code == 200, sbom.text
        packages = table_rows(sbom.text, "packages")
        assert [PYTHON_PACKAGE["package"], PYTHON_PACKAGE["version"]] in [p[:2] for p in packages]
        assert scan_forms(sbom.text) == []
        spdx = guest.get(tab(scanned, "sbom/spdx"))
        assert spdx.status_code == 200 and spdx.headers["content-type"].startswith("application/spdx+json")
        assert "attachment" in spdx.headers["content-disposition"]
        spdx_digest = scanned["spdx_digest"]
        stored = api(
            server, "GET", f"/projects/{scanned['project']}/repositories/app/artifacts/{spdx_digest}/additions/sbom"
        )
        assert spdx.content == stored.content
        cyclonedx = guest.get(tab(scanned, "sbom/cyclonedx"))
        assert cyclonedx.headers["content-type"].startswith("application/vnd.cyclonedx+json")
        bom = json.loads(cyclonedx.content)
        assert len([c for c in bom["components"] if c["type"] == "library"]) == len(packages)

        # A maintainer is offered the scan, and starts one; the tab shows the new report
        # once it has ended, with the same findings.
        offered = maintainer.get(tab(scanned, "vulnerabilities"))
        assert scan_forms(offered.text) == [tab(scanned, "scan")]
        assert maintainer.post(tab(scanned, "scan"), {"scan_type": "vulnerability"}, csrf=False).status_code == 403
        started = maintainer.post(tab(scanned, "scan"), {"scan_type": "vulnerability"})
        assert started.status_code == 303 and started.headers["location"] == tab(scanned, "vulnerabilities")
        assert "Scan started." in maintainer.get(started.headers["location"]).text
        with api_client(server, scanned["maintainer"]) as client:
            ended = wait_for_scan(client, scanned["api_path"], "scan_overview")
        assert ended["scan_overview"][REPORT_MIME]["scan_status"] == "Success"
        again = maintainer.get(tab(scanned, "vulnerabilities"))
        assert sorted(r[0] for r in finding_rows(again.text)) == sorted(r[0] for r in rows)
    finally:
        guest.close()
        maintainer.close()


def test_a_stranger_is_told_what_a_missing_project_tells(server: Portside, scanned: dict[str, Any]) -> None:
    stranger = Browser(server, scanned["stranger"])
    anonymous = Browser(server, None)
    private, missing = scanned["project"], unique("p")
    try:
        for browser in (stranger, anonymous):
            for name in ("vulnerabilities", "vulnerabilities.csv", "sbom", "sbom/spdx", "sbom/cyclonedx"):
                hidden = browser.get(tab(scanned, name))
                absent = browser.get(tab(scanned, name).replace(f"/projects/{private}/", f"/projects/{missing}/"))
                assert hidden.status_code == absent.status_code == 404, name
                assert message_of(hidden.text) == message_of(absent.text).replace(missing, private)
                assert scanned["digest"] not in hidden.text and PYTHON_PACKAGE["package"] not in hidden.text
        hidden = stranger.post(tab(scanned, "scan"), {"scan_type": "vulnerability"})
        assert hidden.status_code == 404
    finally:
        stranger.close()
        anonymous.close()


def test_the_csv_holds_the_table_s_rows_and_the_filters_keep_what_they_say(
    admin: Browser, scanned: dict[str, Any]
) -> None:
    vulnerabilities = scanned["vulnerabilities"]
    for query, wanted in (
        ("", vulnerabilities),
        ("?fixable=on", [v for v in vulnerabilities if v["fix_version"]]),
        *(
            (f"?severity={s}", [v for v in vulnerabilities if v["severity"] == s])
            for s in sorted(scanned["overview"]["summary"]["summary"])[:2]
        ),
    ):
        page = admin.get(tab(scanned, "vulnerabilities") + query)
        assert page.status_code == 200, page.text
        rows = finding_rows(page.text)
        assert sorted(r[0] for r in rows) == sorted(v["id"] for v in wanted), query
        link = re.search(r'<a href="([^"]+)" download hx-boost="false">Download as CSV</a>', page.text)
        assert link, page.text
        exported = admin.get(unescape(link.group(1)))
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        table = list(csv.reader(io.StringIO(exported.text)))
        assert table[0][:6] == [
            "Vulnerability",
            "Package",
            "Installed version",
            "Fixed version",
            "Severity",
            "CVSS score",
        ]
        assert [tuple(r[:6]) for r in table[1:]] == rows, query
    # The filters as htmx sends them: the findings block alone, the same rows.
    partial = admin.get(
        tab(scanned, "vulnerabilities") + "?fixable=on", headers={"HX-Request": "true", "HX-Target": "findings"}
    )
    assert "<html" not in partial.text and "severity-histogram" not in partial.text
    full = admin.get(tab(scanned, "vulnerabilities") + "?fixable=on")
    assert finding_rows(partial.text) == finding_rows(full.text) != []


def test_the_list_badges_scanned_artifacts_and_an_unscanned_one_offers_its_scan(
    admin: Browser, scanned: dict[str, Any]
) -> None:
    listing = admin.get(repo_url(scanned["project"]))
    assert listing.status_code == 200
    rows = re.findall(r"<tr>(.*?)</tr>", listing.text, re.S)
    scanned_row = next(r for r in rows if scanned["digest"] in r)
    plain_row = next(r for r in rows if scanned["plain"] in r)
    overview = scanned["overview"]
    badge = re.search(r'<a class="badge severity-(\w+)" href="([^"]+)">([^<]+)</a>', scanned_row)
    assert badge, scanned_row
    assert badge.group(3) == f"{overview['severity']} · {overview['summary']['total']}"
    assert badge.group(2).endswith(f"/-/artifacts/{scanned['digest']}/vulnerabilities")
    assert "severity-" not in plain_row

    never = admin.get(tab(scanned, "vulnerabilities", scanned["plain"]))
    assert "This artifact has not been scanned yet." in never.text
    assert scan_forms(never.text) == [tab(scanned, "scan", scanned["plain"])]
    no_sbom = admin.get(tab(scanned, "sbom", scanned["plain"]))
    assert "This artifact has no SBOM yet." in no_sbom.text and "Generate SBOM" in no_sbom.text
    assert admin.get(tab(scanned, "sbom/spdx", scanned["plain"])).status_code == 404


def test_the_administration_shows_the_database_and_scans_everything(
    server: Portside, admin: Browser, scanned: dict[str, Any]
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "portside", "vulndb", "status", "--json", "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    page = admin.get("/admin/scanning")
    assert page.status_code == 200, page.text
    sources = table_rows(page.text, "vulndb-sources")
    assert sorted((r[0], int(r[1])) for r in sources) == sorted(
        (s["name"], s["record_count"]) for s in status["sources"]
    )
    assert '<a href="/admin/scanning" aria-current="page">Vulnerability scanning</a>' in page.text
    started = admin.post("/admin/scanning/run", {})
    assert started.status_code == 303 and re.fullmatch(r"/admin/scanning/\d+", started.headers["location"])
    assert admin.post("/admin/scanning/run", {}, csrf=False).status_code == 403
    # Not an administrator: refused, and the section is in nobody else's navigation.
    guest = Browser(server, scanned["guest"])
    try:
        assert guest.get("/admin/scanning").status_code == 403
    finally:
        guest.close()
