"""Settings: one class, read from the environment (and `.env`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting of the service, with its default. The README lists them too."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = Field(
        "development", description="`production` refuses the development defaults below."
    )
    database_url: str | None = Field(
        None,
        description="PostgreSQL URL (postgresql://user:pass@host:5432/db). "
        "Unset: an embedded PostgreSQL under DATA_DIR (`automation serve` only).",
    )
    redis_url: str | None = Field(
        None,
        description="Redis URL (redis://host:6379/0). Unset: an embedded Redis under DATA_DIR.",
    )
    host: str = Field("127.0.0.1", description="Address the HTTP server binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port the HTTP server binds.")
    data_dir: Path = Field(Path(".data"), description="Embedded servers' data, media and logs.")
    media_dir: Path | None = Field(None, description="Generated media; DATA_DIR/media when unset.")
    media_url: str = Field("/media", description="URL prefix under which media is served.")
    log_dir: Path | None = Field(None, description="Run log files; DATA_DIR/logs when unset.")
    log_level: str = Field("INFO", description="Application log level.")
    log_json: bool = Field(True, description="Structured JSON logs on stdout (false: console).")
    max_upload_bytes: int = Field(5 * 1024 * 1024, description="Largest accepted CSV upload.")
    max_request_bytes: int = Field(
        6 * 1024 * 1024, description="Largest accepted request body (an upload and its form)."
    )
    db_pool_size: int = Field(10, ge=1, description="Connections per process in the pool.")
    ai_provider: Literal["local"] = Field(
        "local", description="Which AI provider the stages call: `local` (built in, no network)."
    )
    local_ai_latency_ms: int = Field(
        0,
        ge=0,
        description="Each call of the local provider takes at least this long, like a real "
        "provider; for benchmarks and demos.",
    )
    run_lease_seconds: float = Field(
        60,
        gt=0,
        description="A worker's lease on a site's run; a killed worker's run resumes elsewhere "
        "about this long after its last heartbeat.",
    )
    run_slice_seconds: float = Field(
        300,
        gt=0,
        description="A run works in jobs of about this long, each enqueueing the next.",
    )
    demo_password: SecretStr = Field(
        SecretStr("demo-password"),
        description="Password of the demo account `make run` creates on first start.",
    )

    @model_validator(mode="after")
    def _refuse_development_defaults(self) -> Settings:
        if self.environment == "production":
            missing = [n for n in ("database_url", "redis_url") if getattr(self, n) is None]
            if missing:
                raise ValueError(f"production needs {', '.join(m.upper() for m in missing)}")
        return self

    @property
    def media_path(self) -> Path:
        return self.media_dir or self.data_dir / "media"

    @property
    def log_path(self) -> Path:
        return self.log_dir or self.data_dir / "logs"


@lru_cache
def get_settings() -> Settings:
    return Settings()
