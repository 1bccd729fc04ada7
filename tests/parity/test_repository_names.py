"""`{repository_name}` in a Harbor path is always relative to the project: in project `pa`,
`pa%252Fx` (Harbor's double encoding of `pa/x`) is the repository `pa/pa/x`, never `pa/x`."""

from __future__ import annotations

from tests.parity.conftest import Live


def test_a_nested_name_that_repeats_the_project_is_relative(live: Live) -> None:
    pa = live.name("pa")
    live.project(pa)
    nested = live.push(f"{pa}/{pa}/x", "v1")
    top = live.push(f"{pa}/x", "v1")
    repositories = f"/projects/{pa}/repositories"

    for encoded in (f"{pa}%252Fx", f"{pa}%2Fx"):
        assert live.ok("GET", f"{repositories}/{encoded}")["name"] == f"{pa}/{pa}/x"
        artifact = live.ok("GET", f"{repositories}/{encoded}/artifacts/v1")
        assert artifact["digest"] == nested.digest and artifact["repository_name"] == f"{pa}/{pa}/x"
        listed = live.ok("GET", f"{repositories}/{encoded}/artifacts")
        assert [a["digest"] for a in listed] == [nested.digest]
        tags = live.ok("GET", f"{repositories}/{encoded}/artifacts/v1/tags")
        assert [t["name"] for t in tags] == ["v1"]
    assert live.ok("GET", f"{repositories}/x")["name"] == f"{pa}/x"
    assert live.ok("GET", f"{repositories}/x/artifacts/v1")["digest"] == top.digest

    # Tagging and deleting through the nested path change the nested repository only.
    r = live.api("POST", f"{repositories}/{pa}%252Fx/artifacts/v1/tags", json={"name": "v2"})
    assert r.status_code == 201, r.text
    assert live.api("GET", f"{repositories}/x/artifacts/v2").status_code == 404
    r = live.api("DELETE", f"{repositories}/{pa}%252Fx/artifacts/v2/tags/v2")
    assert r.status_code == 200, r.text
    r = live.api("PUT", f"{repositories}/{pa}%252Fx", json={"description": "nested"})
    assert r.status_code == 200, r.text
    assert live.ok("GET", f"{repositories}/x").get("description", "") == ""

    r = live.api("DELETE", f"{repositories}/{pa}%252Fx")
    assert r.status_code == 200, r.text
    assert live.api("GET", f"{repositories}/{pa}%252Fx").status_code == 404
    assert live.ok("GET", f"{repositories}/x")["name"] == f"{pa}/x"
    with live.client() as c:
        assert c.get(f"/v2/{pa}/x/manifests/v1", headers={"Accept": top.media_type}).status_code == 200
        assert c.get(f"/v2/{pa}/{pa}/x/manifests/v1", headers={"Accept": nested.media_type}).status_code == 404

    # The artifact paths of the top-level one are its own.
    r = live.api("DELETE", f"{repositories}/x/artifacts/v1")
    assert r.status_code == 200, r.text
    assert live.api("GET", f"{repositories}/x/artifacts/v1").status_code == 404
