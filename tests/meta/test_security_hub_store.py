"""The security hub's list of findings on both databases: one row per finding per
repository holding the manifest, worst first; each of Harbor's conditions narrows it (a
tag or an index's digest reaching the index's children, in that repository only); the
tags of a row are its manifest's and its indexes'; a bounded count stops past its limit."""

from __future__ import annotations

from dataclasses import replace

import pytest

from portside.errors import BadRequest
from portside.meta.criteria import Criteria, Match
from portside.meta.scans import ScannedBy
from portside.meta.sql.scans import SqlScans
from portside.scan.service import summarise
from tests.meta.conftest import Stores, image, index, push
from tests.scan.shared import stored_finding


def _exact(field: str, value: str | int) -> Criteria:
    return Criteria().where(field, Match("exact", (value,)))


async def _registry(stores: Stores) -> dict[str, str]:
    """web/app holds `amd` and `arm` under an index tagged `latest`, `amd` also tagged
    `amd`; web/other holds `amd` untagged; ops/tool holds `tool`, tagged `v1`."""
    amd, arm, tool = image("amd layer"), image("arm layer"), image("tool layer")
    both = index(amd, arm)
    await push(stores.db, "web/app", amd, "amd")
    await push(stores.db, "web/app", arm)
    await push(stores.db, "web/app", both, "latest")
    await push(stores.db, "web/other", amd)
    await push(stores.db, "ops/tool", tool, "v1")
    scans = SqlScans(stores.engine)
    amd_findings = [
        replace(stored_finding("CVE-2018-18074", 4, "2.20.0"), cvss_score=7.5),
        stored_finding("CVE-2023-32681", 3, "2.31.0"),
    ]
    arm_findings = [replace(stored_finding("CVE-2099-0001", 5), package="zlib", cvss_score=9.8)]
    tool_findings = [replace(stored_finding("GHSA-xxxx-yyyy-zzzz", 0), vulnerability_id="GHSA-xxxx-yyyy-zzzz")]
    by = ScannedBy("reg-1", "Trivy", "Aqua Security", "0.50")
    await scans.replace_findings(str(amd.digest), amd_findings, summarise(amd_findings, 1))
    await scans.replace_findings(str(arm.digest), arm_findings, replace(summarise(arm_findings, 1), scanned_by=by))
    await scans.replace_findings(str(tool.digest), tool_findings, summarise(tool_findings, 1))
    return {"amd": str(amd.digest), "arm": str(arm.digest), "tool": str(tool.digest), "index": str(both.digest)}


async def test_every_finding_as_each_repository_holds_it_worst_first(stores: Stores) -> None:
    digests = await _registry(stores)
    scans = SqlScans(stores.engine)
    page = await scans.list_findings(Criteria(), 0, 100, with_tags=True)
    assert page.total == 6
    rows = [(i.repository, i.finding.vulnerability_id, i.tags) for i in page.items]
    assert rows == [
        ("web/app", "CVE-2099-0001", ("latest",)),
        # High before Medium; the same finding of one manifest in two repositories, by name.
        ("web/app", "CVE-2018-18074", ("amd", "latest")),
        ("web/other", "CVE-2018-18074", ()),
        ("web/app", "CVE-2023-32681", ("amd", "latest")),
        ("web/other", "CVE-2023-32681", ()),
        ("ops/tool", "GHSA-xxxx-yyyy-zzzz", ("v1",)),
    ]
    assert page.items[0].scanned_by is not None and page.items[0].scanned_by.name == "Trivy"
    assert page.items[1].scanned_by is None and page.items[1].digest == digests["amd"]
    assert page.items[1].finding.fixed_version == "2.20.0"
    # Without tags asked for, none are read.
    assert all(i.tags == () for i in (await scans.list_findings(Criteria(), 0, 100)).items)
    # Paged, in the same order.
    second = await scans.list_findings(Criteria(), 2, 2)
    assert [(i.repository, i.finding.vulnerability_id) for i in second.items] == rows_of(rows[2:4])
    assert second.total == 6


def rows_of(rows: list[tuple[str, str, tuple[str, ...]]]) -> list[tuple[str, str]]:
    return [(repository, vulnerability) for repository, vulnerability, _ in rows]


async def test_each_condition_narrows_the_list(stores: Stores) -> None:
    digests = await _registry(stores)
    scans = SqlScans(stores.engine)

    async def found(criteria: Criteria) -> list[tuple[str, str]]:
        page = await scans.list_findings(criteria, 0, 100)
        assert page.total == len(page.items)
        return [(i.repository, i.finding.vulnerability_id) for i in page.items]

    assert await found(_exact("vulnerability", "CVE-2018-18074")) == [
        ("web/app", "CVE-2018-18074"),
        ("web/other", "CVE-2018-18074"),
    ]
    # Any of several ids.
    two = Criteria().where("vulnerability", Match("any", ("CVE-2099-0001", "GHSA-xxxx-yyyy-zzzz")))
    assert await found(two) == [("web/app", "CVE-2099-0001"), ("ops/tool", "GHSA-xxxx-yyyy-zzzz")]
    assert await found(_exact("severity", 5)) == [("web/app", "CVE-2099-0001")]
    high = Criteria().where("cvss_score", Match("range", (7, None)))
    assert await found(high) == [
        ("web/app", "CVE-2099-0001"),
        ("web/app", "CVE-2018-18074"),
        ("web/other", "CVE-2018-18074"),
    ]
    assert await found(Criteria().where("cvss_score", Match("range", ("8.5", "10")))) == [("web/app", "CVE-2099-0001")]
    assert [v for _, v in await found(_exact("fixed", "false"))] == ["CVE-2099-0001", "GHSA-xxxx-yyyy-zzzz"]
    assert len(await found(_exact("fixed", "true"))) == 4
    assert await found(_exact("repository", "ops/tool")) == [("ops/tool", "GHSA-xxxx-yyyy-zzzz")]
    assert {r for r, _ in await found(_exact("project", "web"))} == {"web/app", "web/other"}
    # A project's name is a whole first component: "we" is no project of web's repositories.
    assert await found(_exact("project", "we")) == []
    assert await found(_exact("package", "zlib")) == [("web/app", "CVE-2099-0001")]
    assert len(await found(Criteria().where("package", Match("fuzzy", ("REQ",))))) == 5

    # A tag finds its manifest's findings in its own repository; an index's tag its children's.
    assert await found(_exact("tag", "amd")) == [("web/app", "CVE-2018-18074"), ("web/app", "CVE-2023-32681")]
    assert len(await found(_exact("tag", "latest"))) == 3
    assert await found(_exact("tag", "nothing")) == []
    by_index = await found(_exact("digest", digests["index"]))
    # web/other holds the amd manifest but not the index: an index's digest reaches its
    # children in every repository holding them.
    assert ("web/app", "CVE-2099-0001") in by_index and len(by_index) == 5
    assert await found(_exact("digest", digests["tool"])) == [("ops/tool", "GHSA-xxxx-yyyy-zzzz")]
    # Conditions together all hold.
    both = _exact("project", "web").where("severity", Match("exact", (4,)))
    assert await found(both) == [("web/app", "CVE-2018-18074"), ("web/other", "CVE-2018-18074")]

    with pytest.raises(BadRequest):
        await scans.list_findings(Criteria().where("cvss_score", Match("range", ("high", None))), 0, 10)


async def test_a_bounded_count_stops_past_its_limit(stores: Stores) -> None:
    await _registry(stores)
    scans = SqlScans(stores.engine)
    assert (await scans.list_findings(Criteria(), 0, 1, count_limit=3)).total == 4
    assert (await scans.list_findings(Criteria(), 0, 1, count_limit=6)).total == 6
    assert (await scans.list_findings(Criteria(), 0, 1, count_limit=100)).total == 6
