"""SqlSearch: tags by name, manifests by digest prefix, the manifests that use a blob; each
only from the projects it is given, on both databases."""

from __future__ import annotations

import pytest

from portside.meta.search import TAGS_PER_MANIFEST
from portside.meta.sql.search import SqlSearch, _above
from tests.meta.conftest import Stores, blob, image, index, push


@pytest.fixture
def search(stores: Stores) -> SqlSearch:
    return SqlSearch(stores.engine)


def test_the_bound_above_a_prefix_raises_its_last_hex_digit() -> None:
    assert _above("sha256:abc") == "sha256:abd"
    assert _above("sha256:ab9") == "sha256:aba"
    assert _above("sha256:a9f") == "sha256:aa"
    assert _above("sha256:fff") is None


async def test_tags_by_name_exact_first_within_the_projects_given(stores: Stores, search: SqlSearch) -> None:
    manifest = image("t")
    await push(stores.db, "lib/app", manifest, "release")
    await stores.db.put_manifest("lib/app", manifest, "pre-release-1")
    await push(stores.db, "lib/zed", image("z"), "Release")
    await push(stores.db, "other/app", image("o"), "release")

    async def tags(projects: list[str] | None, text: str, repository: str | None = None) -> list[tuple[str, str]]:
        found = await search.tags_named(projects=projects, tag_contains=text, repository_contains=repository, limit=10)
        return [(t.repository, t.tag) for t in found]

    assert await tags(None, "release") == [
        ("lib/app", "release"),
        ("lib/zed", "Release"),
        ("other/app", "release"),
        ("lib/app", "pre-release-1"),
    ]
    assert await tags(["lib"], "release") == [
        ("lib/app", "release"),
        ("lib/zed", "Release"),
        ("lib/app", "pre-release-1"),
    ]
    assert await tags(["lib"], "release", "zed") == [("lib/zed", "Release")]
    assert await tags([], "release") == []
    assert await tags(None, "rel_ase") == []  # LIKE's wildcards are literal
    hit = (await search.tags_named(projects=["other"], tag_contains="rel", repository_contains=None, limit=1))[0]
    assert hit.digest and hit.push_time.tzinfo is not None


async def test_manifests_by_digest_prefix(stores: Stores, search: SqlSearch) -> None:
    child = image("c1")
    await push(stores.db, "lib/app", child)
    await stores.db.put_manifest("lib/app", index(child), "v1")
    await push(stores.db, "other/app", child, "copy")
    digest = str(child.digest)

    async def found(projects: list[str] | None, prefix: str) -> list[tuple[str, str, tuple[str, ...]]]:
        hits = await search.manifests_by_digest(projects=projects, prefixes=[prefix], limit=10)
        return [(h.repository, h.digest, h.tags) for h in hits]

    assert await found(None, digest) == [("lib/app", digest, ()), ("other/app", digest, ("copy",))]
    assert await found(None, digest[:19]) == await found(None, digest)
    assert await found(["lib"], digest[:19]) == [("lib/app", digest, ())]
    assert await found(["nothing"], digest) == []
    assert await found(None, "sha256:" + ("0" if digest[7] != "0" else "1") * 12) == []
    both = await search.manifests_by_digest(projects=None, prefixes=["sha256:", "sha512:"], limit=100)
    assert {h.digest for h in both} == {digest, str(index(child).digest)}
    assert await search.manifests_by_digest(projects=None, prefixes=[], limit=10) == []


async def test_a_manifest_names_its_first_tags_and_one_more(stores: Stores, search: SqlSearch) -> None:
    manifest = image("many")
    await push(stores.db, "lib/many", manifest, "t00")
    for n in range(1, TAGS_PER_MANIFEST + 5):
        await stores.db.put_manifest("lib/many", manifest, f"t{n:02}")
    (hit,) = await search.manifests_by_digest(projects=None, prefixes=[str(manifest.digest)], limit=10)
    assert hit.tags == tuple(f"t{n:02}" for n in range(TAGS_PER_MANIFEST + 1))


async def test_the_manifests_that_use_a_blob_as_layer_or_config(stores: Stores, search: SqlSearch) -> None:
    shared = "the shared layer"
    first, second = image(shared, "a", config='{"n": 1}'), image("b", shared, config='{"n": 2}')
    await push(stores.db, "lib/one", first, "v1")
    await push(stores.db, "lib/two", second)
    await push(stores.db, "private/three", image(shared, config='{"n": 3}'), "v3")
    layer = str(blob(shared)[0])
    uses = await search.blob_uses(projects=["lib"], prefixes=[layer], limit=10)
    assert sorted((u.repository, u.manifest, u.role, u.tags) for u in uses) == sorted(
        [("lib/one", str(first.digest), "layer", ("v1",)), ("lib/two", str(second.digest), "layer", ())]
    )
    assert all(u.blob == layer for u in uses)
    assert len(await search.blob_uses(projects=None, prefixes=[layer[:20]], limit=10)) == 3
    assert len(await search.blob_uses(projects=None, prefixes=[layer], limit=2)) == 2
    config = str(blob('{"n": 1}')[0])
    (use,) = await search.blob_uses(projects=None, prefixes=[config], limit=10)
    assert (use.repository, use.role) == ("lib/one", "config")
    assert await search.blob_uses(projects=[], prefixes=[layer], limit=10) == []
