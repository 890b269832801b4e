"""``ServerSettings``: what ``headroom serve`` runs with, from flags or ``HEADROOM_*`` variables.

Every field has an environment variable (:data:`ENV`); the command line writes the resolved
settings back into the environment so that each of ``--workers N`` processes builds the
same app (:func:`ServerSettings.from_env`). The token is a ``SecretStr``: never printed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from headroom_core.config import HeadroomConfig
from headroom_core.errors import ConfigError

Mode = Literal["audit", "optimize", "off"]
TOKEN_ENV = "HEADROOM_SERVER_TOKEN"

#: field -> environment variable.
ENV: dict[str, str] = {
    "host": "HEADROOM_HOST",
    "port": "HEADROOM_PORT",
    "openai_base_url": "HEADROOM_OPENAI_BASE_URL",
    "anthropic_base_url": "HEADROOM_ANTHROPIC_BASE_URL",
    "store": "HEADROOM_STORE",
    "originals": "HEADROOM_ORIGINALS",
    "mode": "HEADROOM_MODE",
    "workers": "HEADROOM_WORKERS",
    "retrieve_loop": "HEADROOM_RETRIEVE_LOOP",
    "upstream_timeout": "HEADROOM_UPSTREAM_TIMEOUT",
    "token": TOKEN_ENV,
}
_FALSE = frozenset({"0", "false", "no", "off", ""})


class ServerSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    host: str = Field("127.0.0.1", description="Address to bind; loopback unless a token is set.")
    port: int = Field(8787, ge=0, le=65535, description="Port to bind (0: any free port).")
    openai_base_url: str = Field(
        "https://api.openai.com/v1", description="OpenAI upstream, as the SDK's base_url (/v1)."
    )
    anthropic_base_url: str = Field(
        "https://api.anthropic.com", description="Anthropic upstream, as the SDK's base_url."
    )
    store: str = Field("sqlite:///headroom.db", description="Metrics store URL; '' for none.")
    originals: str = Field("memory://", description="Store of originals (retrievable cuts).")
    mode: Mode = Field("optimize", description="Default mode; x-headroom-mode overrides it.")
    workers: int = Field(1, ge=1, description="Worker processes.")
    retrieve_loop: bool = Field(
        True, description="Answer the model's headroom_retrieve calls and call again."
    )
    upstream_timeout: float = Field(600.0, gt=0, description="Seconds to wait for the upstream.")
    max_retrieve_rounds: int = Field(3, ge=1, description="headroom_retrieve rounds per request.")
    token: SecretStr | None = Field(None, description="Required on every request when set.")
    config: HeadroomConfig = Field(default_factory=HeadroomConfig)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(f"server settings: {problems}") from exc

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> ServerSettings:
        """Settings from ``HEADROOM_*`` variables (unset ones keep their defaults)."""
        values: dict[str, Any] = {}
        for name, var in ENV.items():
            if var in environ:
                raw = environ[var]
                values[name] = raw.strip().lower() not in _FALSE if name == "retrieve_loop" else raw
        if not values.get("token"):
            values.pop("token", None)
        return cls(**{**values, **overrides})

    def to_env(self) -> dict[str, str]:
        """The variables :meth:`from_env` reads back into these settings."""
        out = {}
        for name, var in ENV.items():
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            out[var] = ("1" if value else "0") if isinstance(value, bool) else str(value)
        return out

    def check_bind(self) -> None:
        """Refuse a non-loopback address without a token (ConfigError naming both)."""
        if not is_loopback(self.host) and self.token is None:
            raise ConfigError(
                f"--host {self.host} is not a loopback address: set {TOKEN_ENV} (callers then "
                "send it on every request) or bind 127.0.0.1"
            )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


__all__ = ["ENV", "TOKEN_ENV", "ServerSettings", "is_loopback"]
