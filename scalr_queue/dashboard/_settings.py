"""The dashboard's settings: who may open it, what it hides, how often it refreshes.

A typed value of its own (``SCALR_QUEUE_DASHBOARD_*``), read once when the router is built, so
a process that never mounts the dashboard never reads or validates them. Credentials are either
a token (``Authorization: Bearer ...``) or a user and password (HTTP basic); with neither, the
dashboard answers loopback requests only.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .._errors import ConfigurationError

DEFAULT_REDACT = "password,passwd,secret,token,api_key,apikey,authorization,cookie"


class DashboardSettings(BaseSettings):
    """Every dashboard setting, with its default; build it with :func:`load_dashboard_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="SCALR_QUEUE_DASHBOARD_", extra="ignore", frozen=True, validate_default=True
    )

    token: SecretStr | None = Field(None, description="bearer token every request must carry; unset: no token")
    username: str | None = Field(None, description="HTTP basic user name (with `SCALR_QUEUE_DASHBOARD_PASSWORD`)")
    password: SecretStr | None = Field(None, description="HTTP basic password (with `SCALR_QUEUE_DASHBOARD_USERNAME`)")
    read_only: bool = Field(False, description="hide every action (retry, purge, cancel, pause, hold)")
    redact: str = Field(
        DEFAULT_REDACT,
        description="comma-separated argument names whose values are shown as `[redacted]` (any depth, any case)",
    )
    refresh: float = Field(2.0, ge=0.0, le=3600.0, description="seconds between live refreshes; `0` turns them off")
    preview_chars: int = Field(
        4000, ge=100, le=10_000_000, description="characters of a result or argument shown before it is cut"
    )
    page_size: int = Field(50, ge=1, le=1000, description="jobs per page of a queue's job list")
    queues: str | None = Field(
        None, description="comma-separated queue names to show; unset: every queue found in Redis"
    )
    rescan: float = Field(
        60.0,
        ge=0.1,
        le=86400.0,
        description="seconds between background SCANs for new queues (a SCAN walks every key in Redis)",
    )

    @field_validator("token", "password")
    @classmethod
    def _not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("expected a non-empty value, or leave it unset")
        return value

    @model_validator(mode="after")
    def _pair(self) -> DashboardSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("set both SCALR_QUEUE_DASHBOARD_USERNAME and SCALR_QUEUE_DASHBOARD_PASSWORD, or neither")
        return self

    @property
    def requires_credentials(self) -> bool:
        return self.token is not None or self.password is not None

    @property
    def redacted_keys(self) -> frozenset[str]:
        return frozenset(k.strip().lower() for k in self.redact.split(",") if k.strip())

    @property
    def queue_list(self) -> list[str] | None:
        if self.queues is None:
            return None
        return [q.strip() for q in self.queues.split(",") if q.strip()] or None


def load_dashboard_settings(**overrides: Any) -> DashboardSettings:
    """Build from the environment plus ``overrides``; a bad value is one line naming the variable."""
    try:
        return DashboardSettings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = err["loc"]
            name = "SCALR_QUEUE_DASHBOARD_" + str(loc[0]).upper() if loc else "dashboard settings"
            msg = str(err["msg"]).removeprefix("Value error, ")
            lines.append(f"invalid setting {name}: {msg}" if loc else msg)
        raise ConfigurationError("; ".join(lines)) from None


def render_table() -> str:
    """The settings as the markdown table in docs/dashboard.md (a test keeps the two equal)."""
    rows = ["| Variable | Default | What it does |", "| --- | --- | --- |"]
    for name, field in DashboardSettings.model_fields.items():
        default = (
            "unset"
            if field.default is None
            else f"`{str(field.default).lower() if isinstance(field.default, bool) else field.default}`"
        )
        rows.append(f"| `SCALR_QUEUE_DASHBOARD_{name.upper()}` | {default} | {field.description} |")
    return "\n".join(rows)
