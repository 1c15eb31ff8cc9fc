"""Settings: one class, read from the environment (and `.env`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The openai SDK waits at most this long between two attempts of a request.
AI_SDK_LONGEST_PAUSE_SECONDS = 60.0


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
    public_url: str | None = Field(
        None,
        description="Where users and peers reach this service (https://automation.example.com): "
        "makes image URLs in webhook deliveries and links in notifications absolute.",
    )
    log_dir: Path | None = Field(None, description="Run log files; DATA_DIR/logs when unset.")
    log_level: str = Field("INFO", description="Application log level.")
    log_json: bool = Field(True, description="Structured JSON logs on stdout (false: console).")
    max_upload_bytes: int = Field(5 * 1024 * 1024, description="Largest accepted CSV upload.")
    max_request_bytes: int = Field(
        6 * 1024 * 1024, description="Largest accepted request body (an upload and its form)."
    )
    db_pool_size: int = Field(
        20, ge=1, description="Database connections per process, at most; each kept once opened."
    )
    ai_provider: Literal["local", "openai"] = Field(
        "local",
        description="Which AI provider the stages call: `local` (built in, no network) or "
        "`openai` (any OpenAI-compatible endpoint, see AI_BASE_URL).",
    )
    ai_base_url: str = Field(
        "https://api.openai.com/v1",
        description="Base URL of the OpenAI-compatible API (Ollama: http://host:11434/v1).",
    )
    ai_api_key: SecretStr = Field(SecretStr(""), description="API key of the `openai` provider.")
    ai_text_model: str = Field("gpt-4o-mini", description="Chat model for the four text stages.")
    ai_image_model: str = Field("gpt-image-1", description="Model of the images endpoint.")
    ai_image_size: str = Field("1024x1024", description="Size asked of the images endpoint.")
    ai_timeout_seconds: float = Field(
        120, gt=0, description="How long one provider request may take before it is retried."
    )
    ai_max_retries: int = Field(
        4, ge=0, le=10, description="Retries of a request on 429, 5xx, timeouts and lost links."
    )
    ai_max_concurrency: int = Field(
        16,
        ge=1,
        description="Calls in flight to the AI provider across all workers (Redis); sites share "
        "them round-robin when they are the bottleneck.",
    )
    allow_private_urls: bool = Field(
        False,
        description="Let integration and webhook URLs reach loopback, private and link-local "
        "addresses (development and tests only).",
    )
    allow_http_urls: bool = Field(
        False, description="Let integration and webhook URLs use plain `http`, not only `https`."
    )
    publish_timeout_seconds: float = Field(
        30, gt=0, description="How long one request to a WordPress site or webhook may take."
    )
    publish_max_attempts: int = Field(
        3, ge=1, le=10, description="Attempts of one publication (with backoff) before it fails."
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
    worker_max_jobs: int = Field(
        20,
        ge=1,
        description="Jobs one worker process works on at once (runs' slices, cron ticks); runs "
        "beyond it wait in the queue for a worker.",
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
            if self.allow_private_urls:
                raise ValueError("production refuses ALLOW_PRIVATE_URLS")
        if self.ai_provider == "openai" and not self.ai_api_key.get_secret_value():
            raise ValueError("AI_PROVIDER=openai needs AI_API_KEY (any value for a local server)")
        return self

    def absolute(self, path: str) -> str:
        """`path` (`/media/...`, `/automation/...`) as an absolute URL where PUBLIC_URL is set."""
        if self.public_url is None or not path.startswith("/"):
            return path
        return self.public_url.rstrip("/") + path

    @property
    def media_path(self) -> Path:
        return self.media_dir or self.data_dir / "media"

    @property
    def log_path(self) -> Path:
        return self.log_dir or self.data_dir / "logs"

    @property
    def ai_item_deadline_seconds(self) -> float:
        """The longest one AI item may take: every attempt of its call and of the repair
        request timing out, each followed by the longest pause the SDK makes (it honours a
        `Retry-After` of up to a minute). Past it the item fails rather than hang its run."""
        attempts = 2 * (self.ai_max_retries + 1)
        return attempts * (self.ai_timeout_seconds + AI_SDK_LONGEST_PAUSE_SECONDS)


@lru_cache
def get_settings() -> Settings:
    return Settings()
