"""Numbers clients send (ids, pages, durations, lengths, ranges) that no database column can
hold, or that are not ASCII digits: each a clear 4xx, never a 500, signed in or not.

Python's `str.isdigit` takes '²' for a digit and `int` does not; `int` refuses numbers of
more than 4,300 digits; PostgreSQL's `integer` is 32 bits and SQLite's 64.
"""

from __future__ import annotations

import httpx
import pytest

from tests.api import oci
from tests.input.conftest import API, harbor_error

HUGE = "99999999999999999999999"
BEYOND_INT32 = str(2**31)  # fits SQLite's integers, not PostgreSQL's
MANY_DIGITS = "9" * 5000
SUPERSCRIPT_TWO = "%C2%B2"  # '²'
ARABIC_THREE = "%D9%A3"  # '٣', which `int` reads as 3

LISTS = ["/projects", "/repositories", "/users", "/robots", "/audit-logs", "/quotas", "/system/gc", "/system/scrub"]


@pytest.mark.parametrize("who", ["admin", "anonymous"])
@pytest.mark.parametrize(
    "path",
    [
        f"/projects/{HUGE}",
        f"/projects/{BEYOND_INT32}",
        f"/projects/{SUPERSCRIPT_TWO}",
        f"/projects/{MANY_DIGITS}",
        f"/projects/{HUGE}/summary",
        f"/projects/{HUGE}/members",
        f"/projects/1/members/{HUGE}",
        f"/robots/{HUGE}",
        f"/robots/{BEYOND_INT32}",
        f"/users/{HUGE}",
        f"/users/{BEYOND_INT32}",
        f"/quotas/{HUGE}",
        f"/system/gc/{HUGE}",
        f"/system/gc/{BEYOND_INT32}",
        f"/system/gc/{MANY_DIGITS}",
        f"/system/scrub/{HUGE}/log",
        f"/robots?q=ProjectID={HUGE}",
        f"/robots?q=ProjectID={BEYOND_INT32}",
        f"/robots?q=ProjectID={MANY_DIGITS}",
        f"/robots?q=ProjectID={SUPERSCRIPT_TWO}",
        f"/quotas?reference_id={HUGE}",
        f"/quotas?reference_id={SUPERSCRIPT_TWO}",
    ],
)
def test_ids_no_database_holds(admin: httpx.Client, anonymous: httpx.Client, who: str, path: str) -> None:
    client = admin if who == "admin" else anonymous
    r = client.get(API + path)
    if r.status_code == 200:  # a listing of what such an id names: nothing
        assert r.json() == [] and who == "admin", r.text
        return
    harbor_error(r, 400, 401, 403, 404)


@pytest.mark.parametrize("who", ["admin", "anonymous"])
@pytest.mark.parametrize("page", [str(2**62), str(2**31), HUGE, MANY_DIGITS, SUPERSCRIPT_TWO, ARABIC_THREE])
@pytest.mark.parametrize("path", LISTS)
def test_pages_beyond_any_offset(admin: httpx.Client, anonymous: httpx.Client, who: str, path: str, page: str) -> None:
    client = admin if who == "admin" else anonymous
    r = client.get(f"{API}{path}?page={page}")
    error = harbor_error(r, 400)
    assert "page" in error["message"]


def test_a_page_within_bounds_is_an_empty_page(admin: httpx.Client) -> None:
    r = admin.get(f"{API}/projects", params={"page": 2**31 - 1, "page_size": 100})
    assert r.status_code == 200 and r.json() == [], r.text


def test_id_bounds_are_in_the_openapi_document(anonymous: httpx.Client) -> None:
    doc = anonymous.get(f"{API}/openapi.json").json()
    (robot_id,) = [p for p in doc["paths"]["/robots/{robot_id}"]["get"]["parameters"] if p["name"] == "robot_id"]
    assert robot_id["schema"]["maximum"] == 2**31 - 1 and robot_id["schema"]["minimum"] == 1


@pytest.mark.parametrize("duration", [10**15, 2**31, -2, 10**30])
def test_robot_duration_beyond_its_column(admin: httpx.Client, project: str, duration: int) -> None:
    robot = {
        "name": "ci",
        "level": "project",
        "duration": duration,
        "permissions": [
            {"kind": "project", "namespace": project, "access": [{"resource": "repository", "action": "pull"}]}
        ],
    }
    error = harbor_error(admin.post(f"{API}/robots", json=robot), 400)
    assert "duration" in error["message"]
    # The largest duration the column holds is fine.
    robot["duration"] = 2**31 - 1
    r = admin.post(f"{API}/robots", json=robot)
    assert r.status_code == 201, r.text
    r = admin.put(f"{API}/robots/{r.json()['id']}", json={**robot, "duration": duration})
    assert "duration" in harbor_error(r, 400)["message"]


@pytest.mark.parametrize("user_id", [10**30, 2**31, 0, -1])
def test_member_user_id_beyond_any_id(admin: httpx.Client, project: str, user_id: int) -> None:
    r = admin.post(f"{API}/projects/{project}/members", json={"role_id": 2, "member_user": {"user_id": user_id}})
    harbor_error(r, 400, 404)


@pytest.mark.parametrize("role_id", [10**30, 2**31])
def test_role_id_beyond_any_role(admin: httpx.Client, project: str, role_id: int) -> None:
    r = admin.post(f"{API}/projects/{project}/members", json={"role_id": role_id, "member_user": {"username": "admin"}})
    harbor_error(r, 400)


@pytest.mark.parametrize("limit", [10**30, 2**63])
def test_storage_limit_beyond_64_bits(admin: httpx.Client, limit: int) -> None:
    r = admin.post(f"{API}/projects", json={"project_name": oci.unique("q"), "storage_limit": limit})
    harbor_error(r, 400)


@pytest.mark.parametrize("cron", ["0 0 0 31 2 *", "0 0 0 30 2 *", "0 0 0 31 4 *"])
@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_a_custom_cron_that_never_fires(admin: httpx.Client, method: str, cron: str) -> None:
    r = admin.request(method, f"{API}/system/gc/schedule", json={"schedule": {"type": "Custom", "cron": cron}})
    assert "never fires" in harbor_error(r, 400)["message"]
    assert admin.get(f"{API}/system/gc/schedule").status_code == 200


def test_a_cron_longer_than_its_column(admin: httpx.Client) -> None:
    cron = "0 " + ",".join(str(m) for m in range(60)) + " 3 * * *"
    r = admin.put(f"{API}/system/gc/schedule", json={"schedule": {"type": "Custom", "cron": cron}})
    assert "64" in harbor_error(r, 400)["message"]


# /v2 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [SUPERSCRIPT_TWO, ARABIC_THREE, "-1", "1_0", "%201"])
def test_page_length_that_is_not_ascii_digits(admin: httpx.Client, n: str) -> None:
    oci.push_image(admin, "library/listed", "v1")
    oci.assert_error(admin.get(f"/v2/_catalog?n={n}"), 400, "UNSUPPORTED")
    oci.assert_error(admin.get(f"/v2/library/listed/tags/list?n={n}"), 400, "UNSUPPORTED")


@pytest.mark.parametrize("n", [HUGE, MANY_DIGITS])
def test_a_huge_page_length_is_cut_to_the_largest_page(admin: httpx.Client, n: str) -> None:
    oci.push_image(admin, "library/listed", "v1")
    r = admin.get(f"/v2/library/listed/tags/list?n={n}")
    assert r.status_code == 200 and "v1" in r.json()["tags"], oci.error_text(r)
    assert admin.get(f"/v2/_catalog?n={n}").status_code == 200


@pytest.mark.parametrize("content_range", ["0-²", "²-3", "0-" + "9" * 5000, "0-٣"])
def test_chunk_ranges_that_are_not_ascii_digits(admin: httpx.Client, content_range: str) -> None:
    location = oci.start_upload(admin, "library/chunked")
    r = admin.patch(
        location,
        content=b"abcd",
        headers={"content-range": content_range.encode(), "content-type": "application/octet-stream"},
    )
    oci.assert_error(r, {400, 416}, "BLOB_UPLOAD_INVALID")


@pytest.mark.parametrize("wanted", ["bytes=" + "9" * 5000 + "-", "bytes=0-" + "9" * 5000, "bytes=-" + "9" * 5000])
def test_blob_ranges_of_many_digits(admin: httpx.Client, wanted: str) -> None:
    blob = oci.layer(64)
    oci.push_blob(admin, "library/ranged", blob)
    r = admin.get(f"/v2/library/ranged/blobs/{blob.digest}", headers={"range": wanted})
    assert r.status_code in (200, 206, 416), oci.error_text(r)
    if r.status_code in (200, 206):
        assert r.content == blob.data
