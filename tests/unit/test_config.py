import os
from pathlib import Path

import pytest

from portside.config import hand_off, load_settings, received_settings


def test_precedence_defaults_file_env_flags(tmp_path, monkeypatch):
    config = tmp_path / "portside.yml"
    config.write_text("listen: 127.0.0.1:6000\nmax_manifest_bytes: 1000\nlog_requests: false\n")
    settings = load_settings(config)
    assert settings.listen == "127.0.0.1:6000" and settings.max_manifest_bytes == 1000 and not settings.log_requests
    monkeypatch.setenv("PORTSIDE_LISTEN", "127.0.0.1:7000")
    monkeypatch.setenv("PORTSIDE_DATA_DIR", str(tmp_path / "d"))
    settings = load_settings(config)
    assert settings.port == 7000 and settings.data_dir == tmp_path / "d"
    assert load_settings(config, listen="127.0.0.1:8000").port == 8000
    assert load_settings().max_manifest_bytes == 4 * 1024 * 1024


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError):
        load_settings(listen="no-port")
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "missing.yml")
    config = tmp_path / "bad.yml"
    config.write_text("no_such_setting: 1\n")
    with pytest.raises(ValueError):
        load_settings(config)


def test_hand_off_to_workers(monkeypatch):
    monkeypatch.delenv("PORTSIDE_SERVE_SETTINGS_JSON", raising=False)
    settings = load_settings(listen="127.0.0.1:5999", data_dir=Path("/tmp/x"))
    hand_off(settings)
    assert received_settings() == settings


def test_the_production_example_configuration_loads(monkeypatch):
    """deploy/portside.yaml, which the README's topology points to, is valid as written,
    and each instance's PORTSIDE_LISTEN wins over the file's `listen`."""
    monkeypatch.setenv("PORTSIDE_LISTEN", "127.0.0.1:5002")
    example = Path(__file__).resolve().parents[2] / "deploy" / "portside.yaml"
    s = load_settings(example)
    assert s.listen == "127.0.0.1:5002"
    assert s.storage_url == "s3://example-registry/portside"
    assert s.sqlalchemy_url.startswith("postgresql+asyncpg://")
    assert s.redis_url and s.workers == 2


@pytest.mark.parametrize("location", ["_portside/blobs/", "/_portside/blobs", "/a b/"])
def test_an_nginx_blob_location_is_an_absolute_path_ending_in_a_slash(tmp_path, location):
    config = tmp_path / "nginx.yml"
    config.write_text(f"nginx_blob_location: '{location}'\n")
    with pytest.raises(ValueError):
        load_settings(config)
    config.write_text("nginx_blob_location: /_portside/blobs/\n")
    assert load_settings(config).nginx_blob_location == "/_portside/blobs/"


def test_one_server_process_per_core_by_default(monkeypatch):
    monkeypatch.delenv("PORTSIDE_WORKERS", raising=False)
    assert load_settings().workers == len(os.sched_getaffinity(0))
    monkeypatch.setenv("PORTSIDE_WORKERS", "3")
    assert load_settings().workers == 3


def test_the_scanner_adapter_needs_its_token(tmp_path, monkeypatch):
    assert load_settings(data_dir=tmp_path).scanner_adapter_enabled is False
    with pytest.raises(ValueError, match="scanner_adapter_token"):
        load_settings(data_dir=tmp_path, scanner_adapter_enabled=True)
    with pytest.raises(ValueError, match="at least 16"):
        load_settings(data_dir=tmp_path, scanner_adapter_enabled=True, scanner_adapter_token="short")
    token = "t" * 32
    settings = load_settings(data_dir=tmp_path, scanner_adapter_enabled=True, scanner_adapter_token=token)
    assert token not in repr(settings)  # as a traceback or a log line would show them
    monkeypatch.setenv("PORTSIDE_SERVE_SETTINGS_JSON", "{}")  # restored when the test ends
    hand_off(settings)
    assert received_settings().scanner_adapter_token == token  # the server processes get it
