"""Typed settings, read once at start-up: defaults < YAML file < `PORTSIDE_*` environment < CLI flags.

This is the only module that reads the environment or configuration files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

__all__ = ["Settings", "load_settings", "hand_off", "received_settings"]

# How `portside serve` passes its settings to server worker processes it spawns.
_HANDOFF_VARIABLE = "PORTSIDE_SERVE_SETTINGS_JSON"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTSIDE_", frozen=True, extra="forbid")

    listen: str = Field("127.0.0.1:5000", description="HOST:PORT to serve on")
    data_dir: Path = Field(Path("portside-data"), description="blobs, uploads and the SQLite database")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite in the data directory")
    log_requests: bool = Field(True, description="one structured line per request at info level")
    log_level: str = "info"
    max_manifest_bytes: int = Field(4 * 1024 * 1024, gt=0)
    workers: int = Field(1, ge=1, description="server processes")
    runtime_threads: int = Field(1, ge=1, description="I/O threads per worker process")
    # When several clients push the same blob at once the rename that publishes it is the
    # only serialisation point; no tunable is needed for that.

    @field_validator("listen")
    @classmethod
    def _listen_has_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError("listen must be HOST:PORT")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'portside.db').resolve()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if settings_cls.model_config.get("yaml_file"):
            sources.append(YamlConfigSettingsSource(settings_cls))
        return tuple(sources)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings; `overrides` (CLI flags) win over everything, `None` means unset."""
    settings_cls: type[Settings] = Settings
    if config_file is not None:
        if not config_file.is_file():
            raise FileNotFoundError(f"configuration file {config_file} does not exist")

        class FileSettings(Settings):
            model_config = SettingsConfigDict(**{**Settings.model_config, "yaml_file": config_file})

        settings_cls = FileSettings
    return settings_cls(**{k: v for k, v in overrides.items() if v is not None})


def hand_off(settings: Settings) -> None:
    """Make `settings` what `received_settings` returns in worker processes started after this."""
    os.environ[_HANDOFF_VARIABLE] = settings.model_dump_json()


def received_settings() -> Settings:
    handed = os.environ.get(_HANDOFF_VARIABLE)
    if handed is None:
        return load_settings()
    return Settings.model_validate_json(handed)
