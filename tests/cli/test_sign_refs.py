"""`portside sign`'s image references and docker's config.json, without a server."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from portside.cli.sign import ImageRef, _docker_auth, parse_image

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5000/library/app:v1", ImageRef("127.0.0.1:5000", "library/app", "v1", None)),
        ("127.0.0.1:5000/library/app", ImageRef("127.0.0.1:5000", "library/app", "latest", None)),
        (f"localhost/a/b/c@{DIGEST}", ImageRef("localhost", "a/b/c", None, DIGEST)),
        (f"reg.example.com/app:v1@{DIGEST}", ImageRef("reg.example.com", "app", "v1", DIGEST)),
    ],
)
def test_references(text: str, expected: ImageRef) -> None:
    assert parse_image(text) == expected


def test_reference_and_scheme() -> None:
    assert parse_image(f"localhost:5000/app:v1@{DIGEST}").reference == DIGEST
    assert parse_image("127.0.0.1:5000/app:v1").base_url == "http://127.0.0.1:5000"
    assert parse_image("localhost/app").base_url == "http://localhost"
    assert parse_image("reg.example.com:8443/app").base_url == "https://reg.example.com:8443"


@pytest.mark.parametrize("text", ["library/app:v1", "app", "127.0.0.1:5000", "localhost/app@md5:00"])
def test_bad_references(text: str) -> None:
    with pytest.raises(ValueError):
        parse_image(text)


def test_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert _docker_auth("127.0.0.1:5000") is None
    auth = base64.b64encode(b"u:p").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"https://reg.example.com": {"auth": auth}}}))
    assert _docker_auth("reg.example.com") == f"Basic {auth}"
    assert _docker_auth("127.0.0.1:5000") is None
    (tmp_path / "config.json").write_text("not json")
    assert _docker_auth("reg.example.com") is None
