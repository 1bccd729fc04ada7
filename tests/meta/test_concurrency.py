"""Several instances (one engine each) writing to one database at once.

On SQLite writers take turns; on PostgreSQL they run side by side at READ COMMITTED.
Each case runs a few rounds, so interleavings the database allows show up: every outcome
must be one that taking turns could have produced, and no race may surface as a database
error (IntegrityError, deadlock) instead of the registry's own answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from portside.errors import Conflict, Denied, ManifestBlobUnknown
from portside.meta.accounts import AuditQuery
from portside.meta.stores import UploadRecord
from tests.meta.conftest import Stores, blob, gather_all, image, index, push

ROUNDS = 8
Instances = Callable[[int], list[Stores]]


def _errors(results: list[object]) -> list[BaseException]:
    return [r for r in results if isinstance(r, BaseException)]


async def test_same_manifest_and_tag_pushed_by_every_instance(instances: Instances):
    nodes = instances(4)
    for round_ in range(ROUNDS):
        repo, manifest = f"lib/same{round_}", image(f"layer{round_}", "shared")
        results = await gather_all(*(push(node.db, repo, manifest, "latest") for node in nodes))
        assert _errors(results) == []
        found = await nodes[0].db.get_manifest(repo, "latest")
        assert found is not None and found.digest == manifest.digest
        assert await nodes[0].db.list_tags(repo, None, None) == ["latest"]
        assert await nodes[0].db.list_repositories(None, None) == sorted(f"lib/same{r}" for r in range(round_ + 1))


async def test_one_tag_pushed_with_different_manifests(instances: Instances):
    nodes = instances(4)
    for round_ in range(ROUNDS):
        repo = f"lib/moving{round_}"
        manifests = [image(f"m{round_}-{i}") for i in range(len(nodes))]
        results = await gather_all(*(push(n.db, repo, m, "latest") for n, m in zip(nodes, manifests, strict=True)))
        assert _errors(results) == []
        found = await nodes[0].db.get_manifest(repo, "latest")
        assert found is not None and found.digest in {m.digest for m in manifests}
        for manifest in manifests:
            assert await nodes[0].db.get_manifest(repo, manifest.digest) is not None


async def test_repository_created_by_many_at_once(instances: Instances):
    nodes = instances(6)
    for round_ in range(ROUNDS):
        repo = f"new/repo{round_}"
        blobs = [blob(f"{round_}-{i}") for i in range(len(nodes))]
        results = await gather_all(*(n.db.link_blob(repo, *b) for n, b in zip(nodes, blobs, strict=True)))
        assert _errors(results) == []
        for digest, size in blobs:
            assert await nodes[0].db.blob_size(repo, digest) == size
    assert await nodes[0].db.list_repositories(None, None) == sorted(f"new/repo{r}" for r in range(ROUNDS))


async def test_unlink_racing_a_manifest_that_needs_the_blob(instances: Instances):
    pusher, deleter = instances(2)
    outcomes = set()
    for round_ in range(ROUNDS * 2):
        repo, manifest = f"lib/race{round_}", image(f"needed{round_}")
        layer = manifest.blobs[1]
        for descriptor in manifest.blobs:
            await pusher.db.link_blob(repo, descriptor.digest, descriptor.size)
        put, unlink = await gather_all(
            pusher.db.put_manifest(repo, manifest, "v1"), deleter.db.unlink_blob(repo, layer.digest)
        )
        # Either order is fine; both succeeding is not.
        if put is None:
            assert isinstance(unlink, Denied), unlink
            assert await pusher.db.blob_size(repo, layer.digest) == layer.size
        else:
            assert isinstance(put, ManifestBlobUnknown), put
            assert unlink is True
            assert await pusher.db.get_manifest(repo, manifest.digest) is None
        outcomes.add(put is None)
    assert outcomes  # at least one round ran


async def test_child_deleted_while_an_index_naming_it_is_pushed(instances: Instances):
    pusher, deleter = instances(2)
    for round_ in range(ROUNDS * 2):
        repo, child = f"lib/idx{round_}", image(f"child{round_}")
        await push(pusher.db, repo, child)
        parent = index(child)
        put, delete = await gather_all(
            pusher.db.put_manifest(repo, parent, "multi"), deleter.db.delete_manifest(repo, child.digest)
        )
        if put is None:
            assert isinstance(delete, Denied), delete
            assert await pusher.db.get_manifest(repo, child.digest) is not None
        else:
            assert isinstance(put, ManifestBlobUnknown), put
            assert delete is True
            assert await pusher.db.get_manifest(repo, "multi") is None


async def test_manifest_deleted_while_it_is_tagged_again(instances: Instances):
    pusher, deleter = instances(2)
    for round_ in range(ROUNDS * 2):
        repo, manifest = f"lib/retag{round_}", image(f"retag{round_}")
        await push(pusher.db, repo, manifest, "old")
        put, delete = await gather_all(
            pusher.db.put_manifest(repo, manifest, "new"), deleter.db.delete_manifest(repo, manifest.digest)
        )
        assert put is None and delete is True
        # A tag never outlives the link of the manifest it names.
        by_tag = await pusher.db.get_manifest(repo, "new")
        by_digest = await pusher.db.get_manifest(repo, manifest.digest)
        assert (by_tag is None) == (by_digest is None)


async def test_repository_deleted_during_pushes(instances: Instances):
    pushers = instances(3)
    (deleter,) = instances(1)
    for round_ in range(ROUNDS):
        repo = f"lib/doomed{round_}"
        await push(pushers[0].db, repo, image("first"), "v0")
        manifests = [image(f"doomed{round_}-{i}") for i in range(len(pushers))]
        results = await gather_all(
            deleter.artifacts.delete_repository(repo),
            *(push(p.db, repo, m, f"v{i}") for i, (p, m) in enumerate(zip(pushers, manifests, strict=True))),
        )
        # A push that lost its blobs to the delete says so; nothing else may fail.
        assert results[0] is True
        for result in results[1:]:
            assert result is None or isinstance(result, ManifestBlobUnknown), result
        for i, manifest in enumerate(manifests):
            by_tag = await deleter.db.get_manifest(repo, f"v{i}")
            assert by_tag is None or by_tag.digest == manifest.digest


async def test_member_added_twice_at_once(instances: Instances):
    nodes = instances(2)
    owner = await nodes[0].accounts.create_user("owner", "h", email=None, realname="", comment="", sysadmin=False)
    project = await nodes[0].accounts.create_project("team", owner.user_id, {})
    for round_ in range(ROUNDS):
        user = await nodes[0].accounts.create_user(
            f"u{round_}", "h", email=None, realname="", comment="", sysadmin=False
        )
        results = await gather_all(*(n.accounts.add_member(project.project_id, user.user_id, 2) for n in nodes))
        assert sum(1 for r in results if isinstance(r, Conflict)) == 1, results
        assert sum(1 for r in results if not isinstance(r, BaseException)) == 1, results


async def test_names_claimed_by_many_at_once(instances: Instances):
    nodes = instances(3)
    accounts = [n.accounts for n in nodes]
    users = await gather_all(
        *(a.create_user("same", "h", email=None, realname="", comment="", sysadmin=False) for a in accounts)
    )
    assert len(_errors(users)) == 2 and all(isinstance(e, Conflict) for e in _errors(users)), users
    owner = next(u for u in users if not isinstance(u, BaseException))
    projects = await gather_all(*(a.create_project("proj", owner.user_id, {"public": "true"}) for a in accounts))
    assert len(_errors(projects)) == 2 and all(isinstance(e, Conflict) for e in _errors(projects)), projects
    project = next(p for p in projects if not isinstance(p, BaseException))
    robots = await gather_all(
        *(
            a.create_robot(
                "robot$proj+ci", "s", description="", level="project", project_id=project.project_id,
                duration=1, expires_at=-1, disabled=False, permissions=(), creator="",
            )
            for a in accounts
        )
    )  # fmt: skip
    assert len(_errors(robots)) == 2 and all(isinstance(e, Conflict) for e in _errors(robots)), robots
    emails = await gather_all(
        *(
            a.create_user(f"mail{i}", "h", email="one@x.io", realname="", comment="", sysadmin=False)
            for i, a in enumerate(accounts)
        )
    )
    assert len(_errors(emails)) == 2 and all("email" in str(e) for e in _errors(emails)), emails


async def test_project_metadata_updated_at_once(instances: Instances):
    nodes = instances(4)
    owner = await nodes[0].accounts.create_user("o", "h", email=None, realname="", comment="", sysadmin=False)
    project = await nodes[0].accounts.create_project("meta", owner.user_id, {})
    keys = [f"k{i}" for i in range(6)]
    for round_ in range(ROUNDS):
        updates = [{k: f"{round_}-{n}" for k in (keys if n % 2 else list(reversed(keys)))} for n in range(len(nodes))]
        results = await gather_all(
            *(n.accounts.update_metadata(project.project_id, u) for n, u in zip(nodes, updates, strict=True))
        )
        assert _errors(results) == []
    found = await nodes[0].accounts.get_project(project.project_id)
    assert found is not None and set(keys) <= set(found.metadata)


async def test_pull_batches_from_many_instances(instances: Instances):
    nodes = instances(4)
    repos = [f"pull/r{i}" for i in range(8)]
    manifests = {repo: image(repo) for repo in repos}
    for repo, manifest in manifests.items():
        await push(nodes[0].db, repo, manifest, "v1")
    t0 = datetime(2032, 1, 1, tzinfo=UTC)
    batches = []
    for n in range(len(nodes)):
        # Overlapping batches, each walking the repositories in its own order.
        order = repos if n % 2 == 0 else list(reversed(repos))
        batches.append([(repo, manifests[repo].digest, t0 + timedelta(seconds=n)) for repo in order * 3])
    for _ in range(ROUNDS):
        results = await gather_all(*(node.db.record_pulls(batch) for node, batch in zip(nodes, batches, strict=True)))
        assert _errors(results) == []
    for repo in repos:
        info = await nodes[0].artifacts.get_repository(repo)
        assert info is not None and info.pull_count == ROUNDS * len(nodes) * 3
        artifact = await nodes[0].artifacts.get_artifact(repo, str(manifests[repo].digest))
        assert artifact is not None and artifact.pull_time == t0 + timedelta(seconds=len(nodes) - 1)


async def test_audit_written_by_many_instances(instances: Instances):
    nodes = instances(4)

    async def write(node: Stores, n: int) -> None:
        for i in range(10):
            await node.accounts.record(
                project_id=None, username=f"n{n}", operation="pull", resource_type="artifact", resource=f"r:{i}"
            )

    assert _errors(await gather_all(*(write(node, n) for n, node in enumerate(nodes)))) == []
    page = await nodes[0].accounts.list_audit(AuditQuery(), 0, 100)
    assert page.total == 40
    times = [r.op_time for r in page.items]
    assert times == sorted(times, reverse=True)


async def test_uploads_completed_into_one_new_repository(instances: Instances):
    nodes = instances(4)
    for round_ in range(ROUNDS):
        repo = f"up/new{round_}"
        ids = [f"u{round_}-{i}" for i in range(len(nodes))]
        sessions = [UploadRecord(i, repo, 0, datetime.now(UTC)) for i in ids]
        await asyncio.gather(*(n.db.save_upload(s) for n, s in zip(nodes, sessions, strict=True)))
        results = await gather_all(
            *(n.db.complete_upload(s, *blob(s.upload_id)) for n, s in zip(nodes, sessions, strict=True))
        )
        assert _errors(results) == []
        for upload_id in ids:
            ended = await nodes[0].db.get_upload(upload_id)
            assert ended is not None and ended.ended
            assert await nodes[0].db.blob_size(repo, blob(upload_id)[0]) is not None
