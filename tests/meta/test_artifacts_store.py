"""SqlArtifacts: the management API's repositories, artifacts and tags."""

from __future__ import annotations

from portside.meta.criteria import EVERYTHING, Criteria, Match
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
