"""One typed settings object, read from the environment (prefix ``REMPART_``).

Production refuses to start with embedded defaults that only make sense on a laptop: a SQLite
file, a key-encryption key stored beside the database, plain-http cookies.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REMPART_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite:///var/rempart.db"
    # Role the application connects as on PostgreSQL; it must not own the tables nor bypass RLS.
    # When empty, the connection's own role is used (embedded default, tests set their own).
    database_app_role: str = ""
    redis_url: str = ""
    # Key-encryption keys: a JSON key ring file, or the same JSON in an environment variable
    # (``REMPART_KEK``); a KMS sits behind the same interface in production.
    kek_file: Path = Path("var/keys/kek.json")
    kek: str = ""
    var_dir: Path = Path("var")
    # Browsers refuse passkeys bound to an IP address: the embedded default is localhost.
    public_origin: str = "http://localhost:8000"
    rp_id: str = "localhost"
    log_json: bool = False
    # ``rempart demo`` turns it on: the start page then lists the demo's accounts and sample
    # patients from var/demo.json (synthetic people). Never on in production.
    demo_start_page: bool = False
    import_batch_size: int = Field(default=2000, ge=1, le=100_000)
    # Per server process: requests worked on at once (others wait a moment, then get a 503) and
    # worker threads; the database pool is sized from both (``rempart.web.capacity``).
    max_in_flight: int = Field(default=16, ge=1, le=1024)
    server_threads: int = Field(default=8, ge=1, le=256)
    # The load balancers in front of the app processes, as IP addresses or networks separated by
    # commas: only from them is ``X-Forwarded-For`` believed. The caller's address feeds the access
    # log and detection (new network), so a header from anyone else is ignored, and "*" is refused.
    trusted_proxies: str = ""
    # The access log (``rempart.audit``): the key ring that signs its checkpoints as JSON
    # (``REMPART_AUDIT_SIGNING_KEYS``), else read from this file (default var/keys/audit-signing.json).
    audit_signing_keys: str = ""
    audit_signing_key_file: Path | None = None
    # Seal from inside every app process (they take turns through a row lock); off in tests, and
    # when a separate ``rempart audit seal`` worker runs.
    audit_sealer_in_app: bool = True
    audit_seal_interval_seconds: float = 1.0
    audit_max_batch: int = 50_000
    # ``/metrics`` (``rempart.web.metrics``) answers loopback callers that came through no proxy;
    # anyone else needs ``Authorization: Bearer <this token>``. Empty: loopback only.
    metrics_token: str = Field(default="", repr=False)

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token_is_long(cls, value: str) -> str:
        if value and len(value) < 32:
            raise ValueError("REMPART_METRICS_TOKEN must be at least 32 characters (or empty: loopback only)")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: str) -> str:
        for item in (part.strip() for part in value.split(",") if part.strip()):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"REMPART_TRUSTED_PROXIES: {item[:64]!r} is not an IP address or network"
                    " (a proxy trusted by name, or everyone, would let any caller choose its address)"
                ) from None
        return value

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [part.strip() for part in self.trusted_proxies.split(",") if part.strip()]

    @model_validator(mode="after")
    def _refuse_laptop_defaults_in_production(self) -> Settings:
        if self.environment != "production":
            return self
        problems = []
        if self.database_url.startswith("sqlite"):
            problems.append("REMPART_DATABASE_URL must point at PostgreSQL")
        if not self.redis_url:
            problems.append("REMPART_REDIS_URL must be set (shared counters)")
        if not self.public_origin.startswith("https://"):
            problems.append("REMPART_PUBLIC_ORIGIN must be https")
        if not self.database_app_role:
            problems.append("REMPART_DATABASE_APP_ROLE must name the role that cannot bypass row-level security")
        if self.demo_start_page:
            problems.append("REMPART_DEMO_START_PAGE must be off (it lists the demo's enrolment links)")
        if problems:
            raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self

    @property
    def cookies_secure(self) -> bool:
        # Plain-http cookies only for the localhost demo.
        return not self.public_origin.startswith("http://127.0.0.1") and not self.public_origin.startswith(
            "http://localhost"
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
