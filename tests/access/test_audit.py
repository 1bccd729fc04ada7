"""The audit trail: pushes, pulls, deletes and logins are recorded with who did them.

Registry events are written by a background task about once a second, so the test polls
the audit_logs table (through the account store) for a few seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from portside.meta.accounts import AuditRecord
from tests.access.accounts import ANONYMOUS, AUDIT_READER, AUDITOR, PRINCIPALS, audit_records
from tests.access.conftest import AclServer
from tests.access.flow import TokenFlow, describe, repo_scope
from tests.api import oci


def _poll(
    acl: AclServer, found: Callable[[list[AuditRecord]], bool], timeout: float = 8.0, **query
) -> list[AuditRecord]:
    deadline = time.monotonic() + timeout
    while True:
        records = audit_records(acl.data_dir, **query)
        if found(records) or time.monotonic() > deadline:
            return records
        time.sleep(0.25)


def _has(records: list[AuditRecord], **fields: object) -> bool:
    return any(all(getattr(r, k) == v for k, v in fields.items()) for r in records)


def test_registry_operations_and_logins_are_audited(acl: AclServer) -> None:
    priv_id = acl.seeded.project_ids["priv"]
    pub_id = acl.seeded.project_ids["pub"]
    repo, robot_repo = "priv/audit-app", "priv/audit-robot"

    # a successful login (first one of this account) and a failed one
    with TokenFlow(acl.url, AUDITOR) as flow:
        token = flow.token(repo_scope(repo, "pull,push"))
        flow.http.headers.update(flow.bearer(token))
        manifest = oci.push_image(flow.http, repo, "v1")
    with httpx.Client(base_url=acl.url, timeout=30.0) as c:
        r = c.get("/service/token", params={"service": "portside"}, auth=(AUDITOR.username or "", "Wrong-Passw0rd1"))
        assert r.status_code == 401, describe(r)
        r = c.get("/service/token", params={"service": "portside"}, auth=("audit-nobody", "Wrong-Passw0rd1"))
        assert r.status_code == 401, describe(r)

    # a guest pulls; its push attempt is refused and leaves no record
    with TokenFlow(acl.url, AUDIT_READER) as flow:
        token = flow.token(repo_scope(repo, "pull,push"))
        r = flow.http.get(f"/v2/{repo}/manifests/v1", headers={**flow.bearer(token), "Accept": oci.ACCEPT_ALL})
        assert r.status_code == 200, describe(r)
        r = flow.http.put(
            f"/v2/{repo}/manifests/guest",
            content=manifest.body,
            headers={**flow.bearer(token), "content-type": manifest.media_type},
        )
        assert r.status_code == 401, describe(r)

    # a robot pushes, anonymous pulls from the public project
    with TokenFlow(acl.url, PRINCIPALS["rpusher"]) as flow:
        flow.http.headers.update(flow.bearer(flow.token(repo_scope(robot_repo, "pull,push"))))
        oci.push_image(flow.http, robot_repo, "r1")
    with TokenFlow(acl.url, ANONYMOUS) as flow:
        token = flow.token(repo_scope("pub/seed", "pull"))
        r = flow.http.get("/v2/pub/seed/manifests/v1", headers={**flow.bearer(token), "Accept": oci.ACCEPT_ALL})
        assert r.status_code == 200, describe(r)

    # a maintainer deletes the artifact
    with TokenFlow(acl.url, PRINCIPALS["maintainer"]) as flow:
        token = flow.token(repo_scope(repo, "delete"))
        r = flow.http.delete(f"/v2/{repo}/manifests/{manifest.digest}", headers=flow.bearer(token))
        assert r.status_code == 202, describe(r)

    wanted = [
        dict(
            operation="create",
            username=AUDITOR.username,
            resource=f"{repo}:v1",
            project_id=priv_id,
            resource_type="artifact",
        ),
        dict(operation="pull", username=AUDIT_READER.username, resource=f"{repo}:v1", project_id=priv_id),
        dict(operation="create", username="robot$priv+pusher", resource=f"{robot_repo}:r1", project_id=priv_id),
        dict(operation="pull", username="anonymous", resource="pub/seed:v1", project_id=pub_id),
        dict(
            operation="delete",
            username=PRINCIPALS["maintainer"].username,
            resource=f"{repo}@{manifest.digest}",
            project_id=priv_id,
        ),
        dict(operation="login", username=AUDITOR.username, success=True),
        dict(operation="login", username=AUDITOR.username, success=False),
        dict(operation="login", username="audit-nobody", success=False),
    ]
    records = _poll(acl, lambda rs: all(_has(rs, **w) for w in wanted))
    mine = [r for r in records if r.username in (AUDITOR.username, AUDIT_READER.username, "audit-nobody")]
    missing = [w for w in wanted if not _has(records, **w)]
    assert not missing, f"not in the audit log: {missing}\nrecords of the test's accounts: {mine}"
    for r in records:
        if r.operation in ("create", "pull", "delete") and r.resource.startswith(repo):
            assert r.success and r.client == "127.0.0.1", r
    # the refused push by the guest left no trace as a success
    assert not _has(records, operation="create", username=AUDIT_READER.username, success=True)
    # one success and one failure per login attempt, not one per request
    logins = [r for r in records if r.operation == "login" and r.username == AUDITOR.username]
    assert sorted(r.success for r in logins) == [False, True], logins
