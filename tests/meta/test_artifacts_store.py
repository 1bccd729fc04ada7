"""SqlArtifacts: the management API's repositories, artifacts and tags."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, inspect, select, update

from portside.meta.criteria import EVERYTHING, Criteria, Match
from portside.meta.sql.schema import repo_manifests
from tests.meta.conftest import Stores, blob, image, index, push

NEWEST = Criteria(order=(("push_time", True),))
OLDEST = Criteria(order=(("push_time", False),))


async def _repositories(
    stores: Stores,
    projects: list[str] | None = None,
    name_contains: str | None = None,
    exact_name: str | None = None,
    sort: list[tuple[str, bool]] | None = None,
) -> list[str]:
    criteria = Criteria(order=tuple(sort or ()))
    if name_contains is not None:
        criteria = criteria.where("name", Match("fuzzy", (name_contains,)))
    if exact_name is not None:
        criteria = criteria.where("name", Match("exact", (exact_name,)))
    page = await stores.artifacts.list_repositories(projects=projects, criteria=criteria, offset=0, limit=100)
    return [r.name for r in page.items]


async def test_repositories(stores: Stores):
    names = ["lib/a-b", "lib/aB", "lib/a_b", "lib/ab", "lib_x/y", "libx/z", "Other/q", "lib"]
    for name in names:
        await stores.db.link_blob(name, *blob("x"))
    assert await _repositories(stores, sort=[("name", False)]) == sorted(names)
    assert await _repositories(stores, sort=[("name", True)]) == sorted(names, reverse=True)
    assert await _repositories(stores, projects=["lib"], sort=[("name", False)]) == sorted(
        ["lib", "lib/a-b", "lib/aB", "lib/a_b", "lib/ab"]
    )
    assert await _repositories(stores, projects=["lib_x"]) == ["lib_x/y"]
    assert await _repositories(stores, projects=[]) == []
    assert await _repositories(stores, name_contains="_", sort=[("name", False)]) == ["lib/a_b", "lib_x/y"]
    assert await _repositories(stores, name_contains="other") == ["Other/q"]
    assert await _repositories(stores, exact_name="lib/ab") == ["lib/ab"]
    page = await stores.artifacts.list_repositories(
        projects=None, criteria=Criteria(order=(("name", False),)), offset=3, limit=2
    )
    assert page.total == len(names) and [r.name for r in page.items] == sorted(names)[3:5]


async def test_repository_details(stores: Stores):
    artifacts = stores.artifacts
    child = image("c")
    await push(stores.db, "lib/app", child)
    await stores.db.put_manifest("lib/app", index(child), "v1")
    await push(stores.db, "lib/app", image("other"), "v2")
    info = await artifacts.get_repository("lib/app")
    assert info is not None
    assert info.artifact_count == 2  # the index's child is not an artifact of its own
    assert info.creation_time.tzinfo is not None
    assert info.update_time is not None and info.update_time.tzinfo is not None
    assert info.update_time >= info.creation_time
    assert await artifacts.set_description("lib/app", "the app") is True
    assert await artifacts.set_description("lib/none", "x") is False
    described = await artifacts.get_repository("lib/app")
    assert described is not None and described.description == "the app"
    assert described.update_time is not None and described.update_time >= info.update_time
    assert await artifacts.get_repository("lib/none") is None


async def test_delete_repository(stores: Stores):
    manifest = image("gone")
    await push(stores.db, "lib/gone", manifest, "v1")
    assert await stores.artifacts.delete_repository("lib/gone") is True
    assert await stores.artifacts.delete_repository("lib/gone") is False
    assert await stores.db.list_tags("lib/gone", None, None) is None
    assert await stores.db.blob_size("lib/gone", manifest.blobs[0].digest) is None
    # The name can be pushed to again, from nothing.
    await push(stores.db, "lib/gone", manifest, "v2")
    assert await stores.db.list_tags("lib/gone", None, None) == ["v2"]


async def test_artifacts(stores: Stores):
    db, artifacts = stores.db, stores.artifacts
    first, second, third = image("one"), image("two", "more"), image("three")
    await push(db, "lib/art", first, "v1")
    for tag in ("B", "a-b", "a_b", "aB"):
        await push(db, "lib/art", second, tag)
    await push(db, "lib/art", third)
    page = await artifacts.list_artifacts("lib/art", NEWEST, 0, 10)
    assert page.total == 3
    assert [a.digest for a in page.items] == [str(third.digest), str(second.digest), str(first.digest)]
    oldest = await artifacts.list_artifacts("lib/art", OLDEST, 1, 1)
    assert [a.digest for a in oldest.items] == [str(second.digest)]

    art = await artifacts.get_artifact("lib/art", str(second.digest))
    assert art is not None
    assert [t.name for t in art.tags] == sorted(["B", "a-b", "a_b", "aB"])  # byte order
    assert all(t.push_time.tzinfo is not None for t in art.tags)
    assert art.size == len(second.payload) + sum(d.size for d in second.blobs)
    assert art.push_time.tzinfo is not None and art.pull_time is None
    assert art.config_media_type == "application/vnd.oci.image.config.v1+json"
    assert art.references == ()

    async def matching(field: str, kind: str, *values: str) -> set[str]:
        criteria = EVERYTHING.where(field, Match(kind, values))  # type: ignore[arg-type]
        found = await artifacts.list_artifacts("lib/art", criteria, 0, 10)
        return {a.digest for a in found.items}

    assert await matching("tags", "exact", "v1") == {str(first.digest)}
    assert await matching("tags", "fuzzy", "_") == {str(second.digest)}
    assert await matching("tags", "fuzzy", "V") == {str(first.digest)}
    assert await matching("tags", "exact", "nil") == {str(third.digest)}
    assert await matching("tags", "exact", "*") == {str(first.digest), str(second.digest)}
    assert await matching("tags", "any", "v1", "B") == {str(first.digest), str(second.digest)}
    assert await matching("tags", "all", "B", "aB") == {str(second.digest)}
    assert await matching("tags", "all", "B", "v1") == set()
    assert await matching("digest", "exact", str(third.digest)) == {str(third.digest)}
    tagged = await artifacts.list_tags("lib/art", str(second.digest), Criteria(order=(("name", True),)), 0, 2)
    assert tagged.total == 4 and [t.name for t in tagged.items] == ["a_b", "aB"]
    assert await artifacts.tag_digest("lib/art", "aB") == str(second.digest)
    assert await artifacts.tag_digest("lib/art", "nope") is None
    assert await artifacts.get_artifact("lib/art", "sha256:" + "0" * 64) is None
    assert await artifacts.get_artifact("lib/none", str(first.digest)) is None
    assert (await artifacts.list_artifacts("lib/none", EVERYTHING, 0, 5)).total == 0


async def test_index_artifact(stores: Stores):
    a, b = image("arm"), image("amd", "shared")
    for child in (a, b):
        await push(stores.db, "lib/multi", child)
    parent = index(a, b)
    await stores.db.put_manifest("lib/multi", parent, "latest")
    listed = await stores.artifacts.list_artifacts("lib/multi", EVERYTHING, 0, 10)
    assert [x.digest for x in listed.items] == [str(parent.digest)]
    art = listed.items[0]
    assert [r.digest for r in art.references] == [str(a.digest), str(b.digest)]
    assert art.references[0].platform == {"architecture": "arch0", "os": "linux"}
    expected = len(parent.payload) + sum(len(c.payload) + sum(d.size for d in c.blobs) for c in (a, b))
    assert art.size == expected


async def test_tag_limit_and_repository_tags(stores: Stores) -> None:
    """A page of artifacts reads a bounded number of each one's tags (an artifact may carry
    100,000), and a repository's tags page in SQL."""
    one, two = image("a"), image("b")
    await push(stores.db, "lib/app", one, "z-last")
    for i in range(30):
        await stores.db.put_manifest("lib/app", one, f"t{i:02d}")
    await push(stores.db, "lib/app", two, "only")
    art = stores.artifacts
    full = await art.get_artifact("lib/app", str(one.digest))
    assert full is not None and len(full.tags) == 31 and full.tag_count == 31
    few = await art.get_artifact("lib/app", str(one.digest), tag_limit=5)
    assert few is not None and [t.name for t in few.tags] == [f"t{i:02d}" for i in range(5)] and few.tag_count == 31
    none = await art.get_artifact("lib/app", str(one.digest), tag_limit=0)
    assert none is not None and none.tags == () and none.tag_count == 0
    page = await art.list_artifacts("lib/app", Criteria(order=(("push_time", True),)), 0, 10, tag_limit=3)
    assert [(len(a.tags), a.tag_count) for a in page.items] == [(1, 1), (3, 31)]
    every = await art.list_tags("lib/app", None, Criteria(order=(("name", False),)), 28, 5)
    names = sorted(["only", "z-last", *(f"t{i:02d}" for i in range(30))])
    assert every.total == 32 and [t.name for t in every.items] == names[28:33]
    assert all(t.digest == str(one.digest) for t in every.items)
    first = await art.list_tags("lib/app", None, Criteria(order=(("name", False),)), 0, 1)
    assert [(t.name, t.digest) for t in first.items] == [("only", str(two.digest))]
    filtered = await art.list_tags("lib/app", None, Criteria().where("name", Match("fuzzy", ("T1",))), 0, 50)
    assert sorted(t.name for t in filtered.items) == [f"t1{i}" for i in range(10)]
    only = await art.list_tags("lib/app", str(two.digest), EVERYTHING, 0, 50)
    assert [t.name for t in only.items] == ["only"]


async def test_an_artifact_counts_where_it_is_no_child_of_an_index(stores: Stores) -> None:
    """The artifact count asks about the indexes of the artifact's own repository: an image
    that is a child of an index elsewhere is an artifact of its own here."""
    shared = image("shared")
    await push(stores.db, "lib/solo", shared, "v1")
    await push(stores.db, "lib/multi", shared)
    await stores.db.put_manifest("lib/multi", index(shared), "latest")
    solo, multi = await stores.artifacts.get_repository("lib/solo"), await stores.artifacts.get_repository("lib/multi")
    assert solo is not None and multi is not None
    assert (solo.artifact_count, multi.artifact_count) == (1, 1)
    one = Criteria(order=(("name", False),)).where("artifact_count", Match("exact", (1,)))
    listed = await stores.artifacts.list_repositories(projects=["lib"], criteria=one, offset=0, limit=10)
    assert [(r.name, r.artifact_count) for r in listed.items] == [("lib/multi", 1), ("lib/solo", 1)]
    assert (await stores.artifacts.list_artifacts("lib/solo", EVERYTHING, 0, 10)).total == 1


async def test_every_order_pages_through_the_same_artifacts(stores: Stores) -> None:
    """A page is the rows at its offset in the listing's order, ties broken by digest,
    ascending or descending, whether the order is on the link (push time) or the manifest."""
    db, artifacts = stores.db, stores.artifacts
    for i in range(9):
        await push(db, "lib/paged", image(f"p{i}", artifact_type=f"application/vnd.example.t{i % 3}"), f"v{i}")
    child = image("child")
    await push(db, "lib/paged", child)
    await db.put_manifest("lib/paged", index(child), "multi")
    # Four pushed at the same moment: their order is the digests'.
    async with stores.engine.begin() as conn:
        rows = (await conn.execute(select(repo_manifests.c.digest).order_by(repo_manifests.c.digest))).scalars()
        tied = list(rows)[2:6]
        await conn.execute(
            update(repo_manifests)
            .where(repo_manifests.c.digest.in_(tied))
            .values(pushed_at=datetime(2026, 1, 1, tzinfo=UTC))
        )
    everything = await artifacts.list_artifacts("lib/paged", NEWEST, 0, 100)
    assert everything.total == 10 and str(child.digest) not in [a.digest for a in everything.items]
    by_time = [a.digest for a in sorted(everything.items, key=lambda a: a.digest)]
    by_time.sort(key=lambda d: next(a.push_time for a in everything.items if a.digest == d), reverse=True)
    assert [a.digest for a in everything.items] == by_time
    for order in (
        NEWEST,
        OLDEST,
        Criteria(order=(("digest", True),)),
        Criteria(order=(("artifact_type", False),)),
        Criteria(order=(("manifest_media_type", True), ("push_time", False))),
    ):
        full = await artifacts.list_artifacts("lib/paged", order, 0, 100, tag_limit=1)
        pages = [await artifacts.list_artifacts("lib/paged", order, offset, 3, tag_limit=1) for offset in (0, 3, 6, 9)]
        assert [a.digest for p in pages for a in p.items] == [a.digest for a in full.items], order
        assert all(p.total == 10 for p in pages)
        assert [a.tags for p in pages for a in p.items] == [a.tags for a in full.items]
    typed = Criteria(order=(("push_time", True),)).where(
        "artifact_type", Match("exact", ("application/vnd.example.t1",))
    )
    found = await artifacts.list_artifacts("lib/paged", typed, 1, 2)
    assert found.total == 3 and len(found.items) == 2
    assert all(a.artifact_type == "application/vnd.example.t1" for a in found.items)
    # A total the caller has counted already is the page's, and not counted again.
    given = await artifacts.list_artifacts("lib/paged", NEWEST, 0, 3, total=10)
    assert given.total == 10 and [a.digest for a in given.items] == [a.digest for a in everything.items[:3]]


async def test_the_newest_artifact(stores: Stores) -> None:
    db, artifacts = stores.db, stores.artifacts
    assert await artifacts.newest_artifact("lib/none") is None
    await db.link_blob("lib/new", *blob("only a blob"))
    assert await artifacts.newest_artifact("lib/new") is None
    older, newer = image("older"), image("newer")
    await push(db, "lib/new", older, "old")
    await push(db, "lib/new", newer, "b")
    await db.put_manifest("lib/new", newer, "a")
    newest = await artifacts.newest_artifact("lib/new", tag_limit=1)
    assert newest is not None and newest.digest == str(newer.digest)
    assert [t.name for t in newest.tags] == ["a"] and newest.tag_count == 2
    listed = await artifacts.list_artifacts("lib/new", NEWEST, 0, 1)
    assert [a.digest for a in listed.items] == [newest.digest]
    assert await artifacts.repository_exists("lib/new") is True
    assert await artifacts.repository_exists("lib/none") is False


async def test_referrers_of_many_subjects_at_once(stores: Stores) -> None:
    """A level of a referrers tree in one read: each subject's referrers in push order,
    as /v2's referrers list them, and only those of the repository."""
    db, artifacts = stores.db, stores.artifacts
    base, other = image("base"), image("other")
    for manifest in (base, other):
        await push(db, "lib/signed", manifest)
    signature = image("sig", subject=base, artifact_type="application/vnd.example.sig")
    sbom = image("sbom", subject=base, artifact_type="application/spdx+json", annotations={"a": "b"})
    other_signature = image("other-sig", subject=other, artifact_type="application/vnd.example.sig")
    for manifest in (sbom, signature, other_signature):
        await push(db, "lib/signed", manifest)
    # The same image elsewhere, with a referrer of its own there.
    await push(db, "lib/elsewhere", base)
    await push(db, "lib/elsewhere", image("foreign", subject=base))
    unknown = "sha256:" + "0" * 64
    found = await artifacts.referrers("lib/signed", [str(base.digest), str(other.digest), unknown])
    assert [str(d.digest) for d in found[str(base.digest)]] == [str(sbom.digest), str(signature.digest)]
    assert [str(d.digest) for d in found[str(other.digest)]] == [str(other_signature.digest)]
    assert list(found[unknown]) == []
    for subject in (base, other):
        assert list(found[str(subject.digest)]) == await db.referrers("lib/signed", subject.digest, None)
    assert found[str(base.digest)][0].annotations == {"a": "b"}
    assert found[str(base.digest)][0].artifact_type == "application/spdx+json"
    assert await db.referrers("lib/signed", base.digest, "application/vnd.example.sig") == [found[str(base.digest)][1]]
    assert [len(v) for v in (await artifacts.referrers("lib/none", [str(base.digest)])).values()] == [0]
    assert await artifacts.referrers("lib/signed", []) == {}


async def test_tag_digests(stores: Stores) -> None:
    one, two = image("one"), image("two")
    await push(stores.db, "lib/tagged", one, "a")
    await push(stores.db, "lib/tagged", two, "b")
    found = await stores.artifacts.tag_digests("lib/tagged", ["a", "b", "c"])
    assert dict(found) == {"a": str(one.digest), "b": str(two.digest)}
    assert await stores.artifacts.tag_digests("lib/none", ["a"]) == {}
    assert await stores.artifacts.tag_digests("lib/tagged", []) == {}


async def test_the_listings_read_through_their_indexes(stores: Stores) -> None:
    """Migration 0008's indexes exist, and on SQLite (which keeps no statistics to choose
    by) the reads this module sped up go through them: an artifact's first tags through
    (repository, digest, name), a page of artifacts along (repository, push time), and the
    referrers of a manifest through the index on `subject`."""
    async with stores.engine.connect() as conn:
        found = await conn.run_sync(
            lambda sync: {
                table: {ix["name"] for ix in inspect(sync).get_indexes(table)} for table in ("tags", "repo_manifests")
            }
        )
    assert "ix_tags_repo_digest_name" in found["tags"] and "ix_tags_repo_digest" not in found["tags"]
    assert "ix_repo_manifests_repo_pushed" in found["repo_manifests"]
    if stores.engine.dialect.name != "sqlite":
        return
    db, artifacts = stores.db, stores.artifacts
    base = image("base")
    await push(db, "lib/plans", base, "v1")
    await push(db, "lib/plans", image("sig", subject=base, artifact_type="application/vnd.example.sig"))
    for i in range(5):
        await push(db, "lib/plans", image(f"other{i}"), f"o{i}")
    statements: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        statements.append((statement, parameters))

    event.listen(stores.engine.sync_engine, "before_cursor_execute", seen)
    try:
        await artifacts.list_artifacts("lib/plans", NEWEST, 2, 3, tag_limit=2, total=7)
        await artifacts.referrers("lib/plans", [str(base.digest)])
    finally:
        event.remove(stores.engine.sync_engine, "before_cursor_execute", seen)

    async def plan(marker: str) -> str:
        statement, parameters = next((s, p) for s, p in statements if marker in s)
        async with stores.engine.connect() as conn:
            rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, tuple(parameters))
            return "\n".join(str(row[-1]) for row in rows)

    assert "ix_repo_manifests_repo_pushed" in await plan("LIMIT ? OFFSET ?")
    assert "ix_tags_repo_digest_name" in await plan("UNION ALL")
    assert "ix_manifests_subject" in await plan("manifests.subject IN")


async def test_several_conditions_on_tags_at_once(stores: Stores) -> None:
    """Each condition on tags holds (a tag meeting one need not be the tag meeting the
    other), with conditions on the manifest beside them, counted and paged alike."""
    db, artifacts = stores.db, stores.artifacts
    typed = "application/vnd.example.kind"
    both, fuzzy_only, exact_only = image("both", artifact_type=typed), image("fuzzy"), image("exact")
    await push(db, "lib/many", both, "release-1")
    await db.put_manifest("lib/many", both, "stable")
    await push(db, "lib/many", fuzzy_only, "release-2")
    await push(db, "lib/many", exact_only, "stable-old")
    await db.put_manifest("lib/many", exact_only, "Stable")
    criteria = NEWEST.where("tags", Match("fuzzy", ("RELEASE",))).where("tags", Match("exact", ("stable",)))
    found = await artifacts.list_artifacts("lib/many", criteria, 0, 10, tag_limit=1)
    assert (found.total, [a.digest for a in found.items]) == (1, [str(both.digest)])
    assert [t.name for t in found.items[0].tags] == ["release-1"] and found.items[0].tag_count == 2
    ranged = NEWEST.where("tags", Match("range", ("release-2", "stable-old")))
    found = await artifacts.list_artifacts("lib/many", ranged, 0, 10)
    assert {a.digest for a in found.items} == {str(both.digest), str(fuzzy_only.digest), str(exact_only.digest)}
    typed_release = criteria.where("artifact_type", Match("exact", (typed,)))
    assert (await artifacts.list_artifacts("lib/many", typed_release, 0, 10)).total == 1
    untyped = NEWEST.where("tags", Match("fuzzy", ("release",))).where("artifact_type", Match("exact", ("x/y",)))
    assert (await artifacts.list_artifacts("lib/many", untyped, 0, 10)).total == 0
    one_of = NEWEST.where("tags", Match("any", ("Stable", "release-2")))
    found = await artifacts.list_artifacts("lib/many", one_of, 0, 1)
    assert found.total == 2 and [a.digest for a in found.items] == [str(exact_only.digest)]
    assert (await artifacts.list_artifacts("lib/many", NEWEST.where("tags", Match("any", ())), 0, 10)).total == 0
