"""A third-party Harbor client (the `harborapi` package) drives Portside over live HTTP:
every call here must succeed and its models must parse every answer (the client
validates them with its pydantic models), for the resources Portside has."""

from __future__ import annotations

from harborapi import HarborAsyncClient
from harborapi.models import ProjectReq, RobotCreate, RobotPermission, Tag, UserCreationReq
from harborapi.models.models import Access

from tests.api import oci
from tests.parity.conftest import ADMIN, API, DEVELOPER, Live
from tests.parity.test_artifacts import HISTORY, image_config


def _client(live: Live, who: tuple[str, str] = ADMIN) -> HarborAsyncClient:
    # No retries: a failure shows at once (and harborapi's retry code warns under pydantic 2.11).
    return HarborAsyncClient(
        url=f"{live.url}{API}", username=who[0], secret=who[1], validate=True, timeout=60, retry=None
    )


async def test_a_harbor_client_round_trip(live: Live) -> None:
    admin = _client(live)
    project = live.name("ha")
    assert await admin.ping() == "Pong"
    health = await admin.health_check()
    assert health.status == "healthy" and {c.name for c in health.components or []} >= {"database", "storage"}
    info = await admin.get_system_info()
    assert info.auth_mode == "db_auth" and info.harbor_version and info.registry_url == live.server.host
    assert (await admin.get_system_volume_info()).storage is not None

    await admin.create_project(ProjectReq(project_name=project, metadata={"public": "false"}))
    found = await admin.get_project(project)
    assert found.name == project and found.project_id
    name = live.name("hu")
    await admin.create_user(UserCreationReq(username=name, password="Passw0rd-1", email=f"{name}@example.com"))
    [user] = await admin.get_users(query=f"username={name}")
    assert user.username == name
    await admin.add_project_member_user(project, name, DEVELOPER)
    members = await admin.get_project_members(project)
    assert name in {m.entity_name for m in members}
    robot = await admin.create_robot(
        RobotCreate(
            name=live.name("hr"),
            level="project",
            duration=-1,
            permissions=[
                RobotPermission(
                    kind="project",
                    namespace=project,
                    access=[Access(resource="repository", action="pull"), Access(resource="repository", action="push")],
                )
            ],
        )
    )
    assert robot.secret
    robots = await admin.get_robots(query=f"Level=project,ProjectID={found.project_id}")
    assert [r.name for r in robots] == [robot.name]

    image = live.push(f"{project}/team/app", "v1", config=image_config())
    index = oci.index_manifest([oci.image_manifest(image_config("amd64")), oci.image_manifest(image_config("arm64"))])
    live.push_manifest(f"{project}/multi", index, "latest")

    repositories = await admin.get_repositories(project, sort="name")
    assert [r.name for r in repositories] == [f"{project}/multi", f"{project}/team/app"]
    repository = await admin.get_repository(project, "team/app")
    assert repository.name == f"{project}/team/app" and repository.artifact_count == 1
    artifacts = await admin.get_artifacts(project, "team/app", query="tags=v1")
    assert [a.digest for a in artifacts] == [image.digest]
    artifact = await admin.get_artifact(project, "team/app", "v1")
    assert artifact.extra_attrs is not None and artifact.extra_attrs.root["architecture"] == "arm64"
    assert artifact.addition_links is not None and "build_history" in artifact.addition_links.root
    history = await admin.get_artifact_build_history(project, "team/app", "v1")
    assert [h.created_by for h in history] == [h["created_by"] for h in HISTORY]
    multi = await admin.get_artifact(project, "multi", "latest")
    assert [r.platform.architecture for r in multi.references or [] if r.platform] == ["amd64", "arm64"]
    await admin.create_artifact_tag(project, "team/app", "v1", Tag(name="v2"))
    tags = await admin.get_artifact_tags(project, "team/app", "v1", sort="-name")
    assert [t.name for t in tags] == ["v2", "v1"]

    location = await admin.copy_artifact(project, "copied", f"{project}/team/app@{image.digest}")
    assert location.endswith(image.digest)
    copied = await admin.get_artifact(project, "copied", image.digest)
    assert sorted(t.name for t in copied.tags or []) == ["v1", "v2"]

    statistics = await admin.get_statistics()
    assert statistics.total_project_count and statistics.total_storage_consumption
    search = await admin.search(project)
    assert {p.name for p in search.project or []} == {project}
    assert {r.repository_name for r in search.repository or []} == {
        f"{project}/team/app",
        f"{project}/multi",
        f"{project}/copied",
    }
    logs = await admin.get_project_logs(project, query="resource_type=artifact", limit=10)
    assert logs and all(log.resource_type == "artifact" for log in logs)
    assert await admin.get_audit_logs(query=f"resource=~{project}", sort="-op_time", limit=5)
    assert await admin.get_quotas(sort="-used.storage", limit=5)
    assert (await admin.get_project_summary(project)).repo_count == 3

    member = _client(live, (name, "Passw0rd-1"))
    assert (await member.get_current_user()).username == name
    permissions = await member.get_current_user_permissions(f"/project/{found.project_id}", relative=True)
    assert {(p.resource, p.action) for p in permissions} >= {("repository", "pull"), ("repository", "push")}
    mine = await member.get_statistics()
    assert mine.private_project_count == 1 and mine.total_project_count is None

    await admin.delete_artifact_tag(project, "team/app", "v1", "v2")
    await admin.delete_artifact(project, "copied", image.digest)
    await admin.delete_repository(project, "team/app")
    assert [r.name for r in await admin.get_repositories(project)] == [f"{project}/copied", f"{project}/multi"]
    await admin.client.aclose()
    await member.client.aclose()
