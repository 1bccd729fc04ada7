"""CVE allowlists on both databases: one per scope (the system's, each project's), replaced
in place, deleted with their project."""

from __future__ import annotations

from portside.meta.allowlists import SYSTEM
from portside.meta.sql.allowlists import SqlAllowlists
from tests.meta.conftest import Stores


async def test_allowlists_are_kept_per_scope_and_go_with_their_project(stores: Stores) -> None:
    allowlists = SqlAllowlists(stores.engine)
    owner = await stores.accounts.create_user("owner", "h", email=None, realname="", comment="", sysadmin=False)
    project = await stores.accounts.create_project("allowed", owner.user_id, {"public": "false"})
    assert await allowlists.get_allowlist(SYSTEM) is None
    system = await allowlists.put_allowlist(SYSTEM, ["CVE-1", "CVE-2"], None)
    own = await allowlists.put_allowlist(project.project_id, ["CVE-3"], 4102444800)
    assert system.id != own.id and system.project_id == SYSTEM and own.project_id == project.project_id
    again = await allowlists.put_allowlist(project.project_id, ["CVE-4"], None)
    assert again.id == own.id and again.cve_ids == ("CVE-4",) and again.expires_at is None
    assert again.creation_time == own.creation_time and again.update_time is not None
    assert (await allowlists.get_allowlist(SYSTEM)).cve_ids == ("CVE-1", "CVE-2")  # type: ignore[union-attr]
    assert await stores.accounts.delete_project(project.project_id)
    assert await allowlists.get_allowlist(project.project_id) is None
    assert await allowlists.get_allowlist(SYSTEM) is not None
