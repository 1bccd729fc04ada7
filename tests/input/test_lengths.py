"""Text clients store is as long as Harbor allows (255 for user names, emails and project
names) or, where Harbor says nothing or more, as its column: longer is 400 naming the field
and its limit, and nothing is stored. No stored text holds NUL (PostgreSQL's cannot)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api import oci
from tests.input.conftest import API, harbor_error

MB = 1_000_000


def _user(name: str, **fields: Any) -> dict[str, Any]:
    return {"username": name, "password": "Passw0rd-long", "email": f"{name}@example.com", **fields}


@pytest.mark.parametrize(
    "field, value, limit",
    [
        ("realname", "r" * MB, 255),
        ("realname", "r" * 256, 255),
        ("comment", "c" * MB, 1024),
        ("comment", "c" * 1025, 1024),
        ("username", "u" * 256, 255),
        ("email", "e" * 250 + "@example.com", 255),
    ],
)
def test_user_fields(admin: httpx.Client, field: str, value: str, limit: int) -> None:
    name = oci.unique("u")
    error = harbor_error(admin.post(f"{API}/users", json={**_user(name), field: value}), 400)
    assert field in error["message"] and str(limit) in error["message"], error
    assert admin.get(f"{API}/users/search", params={"username": name}).json() == []


def test_user_fields_at_their_limits(admin: httpx.Client) -> None:
    name = oci.unique("u")
    body = _user(name, realname="r" * 255, comment="c" * 1024)
    r = admin.post(f"{API}/users", json=body)
    assert r.status_code == 201, r.text
    user_id = r.headers["location"].rsplit("/", 1)[1]
    found = admin.get(f"{API}/users/{user_id}").json()
    assert (found["realname"], found["comment"]) == (body["realname"], body["comment"])
    for field, value in [("realname", "r" * MB), ("comment", "c" * MB), ("email", "e" * 300 + "@example.com")]:
        error = harbor_error(admin.put(f"{API}/users/{user_id}", json={field: value}), 400)
        assert field in error["message"], error
    assert admin.get(f"{API}/users/{user_id}").json()["realname"] == "r" * 255


@pytest.mark.parametrize(
    "metadata, words",
    [
        ({"k" * 5000: "v" * MB}, ["metadata"]),
        ({"k" * 65: "v"}, ["metadata", "64"]),
        ({"key": "v" * 1025}, ["metadata", "1024"]),
        ({f"k{i}": "v" for i in range(101)}, ["metadata", "100"]),
    ],
)
def test_project_metadata(admin: httpx.Client, project: str, metadata: dict[str, str], words: list[str]) -> None:
    name = oci.unique("p")
    error = harbor_error(admin.post(f"{API}/projects", json={"project_name": name, "metadata": metadata}), 400)
    assert all(word in error["message"] for word in words), error
    harbor_error(admin.get(f"{API}/projects/{name}", headers={"X-Is-Resource-Name": "true"}), 404)
    error = harbor_error(admin.put(f"{API}/projects/{project}", json={"metadata": metadata}), 400)
    assert all(word in error["message"] for word in words), error


def test_project_metadata_at_its_limits(admin: httpx.Client, project: str) -> None:
    metadata = {"k" * 64: "v" * 1024}
    assert admin.put(f"{API}/projects/{project}", json={"metadata": metadata}).status_code == 200
    assert admin.get(f"{API}/projects/{project}").json()["metadata"]["k" * 64] == "v" * 1024


def test_project_name(admin: httpx.Client) -> None:
    error = harbor_error(admin.post(f"{API}/projects", json={"project_name": "p" * 256}), 400)
    assert "project_name" in error["message"] and "255" in error["message"]


def _robot(project: str, **fields: Any) -> dict[str, Any]:
    access = [{"resource": "repository", "action": "pull"}]
    permissions = [{"kind": "project", "namespace": project, "access": access}]
    return {"name": oci.unique("r"), "level": "project", "duration": -1, "permissions": permissions, **fields}


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"description": "d" * MB}, ["description", "1024"]),
        ({"description": "d" * 1025}, ["description", "1024"]),
        ({"name": "n" * 201}, ["name"]),
    ],
)
def test_robot_fields(admin: httpx.Client, project: str, fields: dict[str, Any], words: list[str]) -> None:
    error = harbor_error(admin.post(f"{API}/robots", json=_robot(project, **fields)), 400)
    assert all(word in error["message"] for word in words), error


def test_robot_description_on_update(admin: httpx.Client, project: str) -> None:
    robot = _robot(project, description="d" * 1024)
    r = admin.post(f"{API}/robots", json=robot)
    assert r.status_code == 201, r.text
    robot_id = r.json()["id"]
    assert admin.get(f"{API}/robots/{robot_id}").json()["description"] == "d" * 1024
    error = harbor_error(admin.put(f"{API}/robots/{robot_id}", json={**robot, "description": "d" * MB}), 400)
    assert "description" in error["message"]


def test_a_robots_full_name_fits_its_column(admin: httpx.Client) -> None:
    """robot$<project>+<name>: a long project name and a long robot name together are too long."""
    project = "p" * 200
    assert admin.post(f"{API}/projects", json={"project_name": project}).status_code == 201
    error = harbor_error(admin.post(f"{API}/robots", json=_robot(project, name="n" * 100)), 400)
    assert "255" in error["message"]


def test_robot_permissions(admin: httpx.Client, project: str) -> None:
    robot = _robot(project)
    robot["permissions"][0]["access"] = [{"resource": "repository", "action": "pull"}] * 101
    harbor_error(admin.post(f"{API}/robots", json=robot), 400)


def test_repository_description(admin: httpx.Client, project: str) -> None:
    oci.push_image(admin, f"{project}/app", "v1")
    path = f"{API}/projects/{project}/repositories/app"
    error = harbor_error(admin.put(path, json={"description": "d" * MB}), 400)
    assert "description" in error["message"] and "65535" in error["message"], error
    assert admin.put(path, json={"description": "d" * 65535}).status_code == 200
    assert admin.get(path).json()["description"] == "d" * 65535
