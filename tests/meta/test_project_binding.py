"""Writes bound to a project (`project_id`): checked in their own transaction, on both databases.

A caller let in for project `team` (id N) writes only while `team` is still project N: not
once it was deleted, nor after someone made a new `team`. And deleting a project races
safely with a push into it: never a repository left behind by a deleted project.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portside.errors import Denied, PreconditionFailed
from portside.meta.sql.schema import repositories
from portside.meta.stores import UploadRecord
from portside.oci.digest import Digest
from tests.meta.conftest import Stores, blob, gather_all, image


async def _owner(stores: Stores) -> int:
    return (
        await stores.accounts.create_user("owner", "x", email=None, realname="", comment="", sysadmin=False)
    ).user_id


async def _repository_count(stores: Stores) -> int:
    async with stores.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(repositories))).scalar() or 0)


async def test_bound_writes_need_the_very_project(stores: Stores) -> None:
    db, accounts = stores.db, stores.accounts
    owner = await _owner(stores)
    first = await accounts.create_project("team", owner, {})
    manifest = image("layer")
    for descriptor in manifest.blobs:
        await db.link_blob("team/app", descriptor.digest, descriptor.size, first.project_id)
    await db.put_manifest("team/app", manifest, "v1", first.project_id)
    assert await db.get_manifest("team/app", "v1") is not None

    # The project goes, and another takes its name: the first one's grants reach neither.
    other = await accounts.create_project("other", owner, {})
    stale = first.project_id
    layer, size = blob("another layer")
    with pytest.raises(Denied, match="project team does not exist"):
        await db.link_blob("team/app", layer, size, other.project_id)
    assert await db.delete_manifest("team/app", manifest.digest, stale)
    async with stores.engine.begin() as conn:
        await conn.execute(repositories.delete())
    assert await accounts.delete_project(stale)
    again = await accounts.create_project("team", owner, {})
    assert again.project_id != stale

    session = UploadRecord("upload-1", "team/app", 0, first.creation_time)
    for write in (
        db.link_blob("team/app", layer, size, stale),
        db.complete_upload(session, layer, size, project_id=stale),
        db.put_manifest("team/app", manifest, "v1", stale),
        db.delete_tag("team/app", "v1", stale),
        db.unlink_blob("team/app", layer, stale),
    ):
        with pytest.raises(Denied, match="project team does not exist"):
            await write
    assert await _repository_count(stores) == 0
    assert await db.blob_size("team/app", layer) is None

    # Unbound writes (an open registry's) and writes bound to the new project go through.
    await db.link_blob("team/app", layer, size, again.project_id)
    await db.link_blob("loose/app", layer, size)
    assert await db.blob_size("team/app", layer) == size


async def test_a_project_is_never_deleted_under_a_push(stores: Stores, instances) -> None:  # type: ignore[no-untyped-def]
    """Each round races a bound push into a fresh project with the project's deletion, on
    two instances: either the push lands and the deletion is refused, or the deletion
    lands and the push is refused. Never a deleted project's repository."""
    owner = await _owner(stores)
    pusher, deleter = instances(2)
    for round_ in range(12):
        name = f"race{round_}"
        project = await stores.accounts.create_project(name, owner, {})
        digest = Digest.of(name.encode())
        outcomes = await gather_all(
            pusher.db.link_blob(f"{name}/app", digest, len(name), project.project_id),
            deleter.accounts.delete_project(project.project_id),
        )
        pushed, deleted = outcomes
        still_there = await stores.accounts.get_project(name) is not None
        linked = await stores.db.blob_size(f"{name}/app", digest) is not None
        if still_there:
            assert pushed is None and isinstance(deleted, PreconditionFailed) and linked, outcomes
        else:
            assert deleted is True and isinstance(pushed, Denied) and not linked, outcomes
    async with stores.engine.connect() as conn:
        names = (await conn.execute(select(repositories.c.name))).scalars().all()
    projects = {
        p.name
        for p in (
            await stores.accounts.list_projects(
                name_contains=None, exact_name=None, public=None, visible_to=None, member_of=None, offset=0, limit=100
            )
        ).items
    }
    assert {n.split("/", 1)[0] for n in names} <= projects
