"""Serving configuration, from ``RECSYS_*`` environment variables (pydantic-settings).

Nothing is read at import: :func:`get_settings` builds the settings on first use and keeps them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECSYS_", extra="ignore")

    bundle_path: Path = Field(
        default=Path("var/demo/bundle"),
        description="Artifact bundle to serve (written by `recsys train`); RECSYS_BUNDLE_PATH.",
    )
    ranker: str | None = Field(
        default=None,
        description="Ranker of the bundle to serve; None = the bundle's default ranker.",
    )
    load_on_start: bool = Field(
        default=True,
        description="Load bundle_path at start-up when the app was not given a bundle.",
    )
    events_path: Path = Field(
        default=Path("var/serving/events.sqlite"),
        description="SQLite event log of POST /v1/events (WAL), replayed at start; "
        "RECSYS_EVENTS_PATH.",
    )
    admin_api_key: SecretStr | None = Field(
        default=None,
        description="Key for the /admin routes; they are off while it is unset (no default).",
    )


@lru_cache(maxsize=1)
def get_settings() -> ServingSettings:
    """The process's settings, read from the environment on first use."""
    return ServingSettings()
