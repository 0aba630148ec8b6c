"""The one place the service is configured: `FAKEWATCH_*` environment variables or a `.env` file.

The gateway, the workers and the CLI all build their URLs, limits and detector defaults from
`Settings`, so the embedded default and production differ only in the values given here.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from models.config import (
    DECODE_MAX_SIDE,
    DEFAULT_FRAMES,
    DetectorConfig,
    Precision,
    PresetName,
)
from models.errors import ConfigError

DATA_UMASK = 0o077  # files the service writes are readable by its own user only
PRIVATE_DIR_MODE = 0o700

ENV_PREFIX = "FAKEWATCH_"
# Upload limits follow Sensity's public API (REFERENCE.md §5): 32 MB, 30 minutes, 2560 pixels.
MAX_UPLOAD_BYTES = 32 * 1024 * 1024
MAX_DURATION_S = 30 * 60
MAX_SIDE_PX = 2560
# Enough for one client's parallel uploads; beyond it one key's backlog would hold up everyone's.
MAX_JOBS_IN_FLIGHT_PER_KEY = 10
# Far longer than a healthy queue waits (a GPU worker clears a short clip in seconds), short
# enough that a lost message is noticed within the quarter hour.
QUEUE_TIMEOUT_S = 15 * 60
MIN_API_KEY_LENGTH = 16  # shorter keys can be guessed by a patient client under the rate limit
WEBHOOK_SECRET_FILE = "webhook-secret"
WEBHOOK_SECRET_BYTES = 32  # HMAC-SHA256 key as long as its output
LOOPBACK_NAMES = frozenset({"localhost"})


class InsecureSettingsError(ConfigError):
    """The service would expose an unauthenticated API; the message says what to change."""


def _split_list(value: Any) -> Any:
    """Accept `a,b,c` from the environment as well as a real list."""
    if isinstance(value, str):
        items = [item.strip() for item in value.split(",")]
        return [item for item in items if item]
    return value


def is_loopback(host: str) -> bool:
    """True when `host` only accepts connections from this machine."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


class Settings(BaseSettings):
    """Everything the gateway, workers and `fakewatch serve` need, read from the environment."""

    # Errors name the variable and the problem, never the values: they hold keys and secrets.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        hide_input_in_errors=True,
    )

    # Where things live.
    data_dir: Path = Field(
        default=Path(".fakewatch"),
        description="Uploads, the embedded broker and SQLite stores; shared by gateway and workers.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)

    # Queue and stores: unset means the embedded single-machine default under data_dir.
    broker_url: str | None = Field(default=None, description="e.g. redis://redis:6379/0")
    result_backend: str | None = Field(default=None, description="e.g. redis://redis:6379/1")
    jobstore_url: str | None = Field(default=None, description="sqlite:///path or redis://...")
    jobstore_key_prefix: str = "fakewatch:"
    broker_key_prefix: str = Field(
        default="", description="Prefix for every broker and result key in a shared Redis."
    )
    broker_visibility_timeout_s: int = Field(
        default=3600, description="Redis redelivers a message unacknowledged this long."
    )

    # Upload limits.
    max_upload_bytes: int = Field(default=MAX_UPLOAD_BYTES, gt=0)
    max_duration_s: float = Field(default=MAX_DURATION_S, gt=0)
    max_side_px: int = Field(
        default=MAX_SIDE_PX,
        gt=0,
        le=DECODE_MAX_SIDE,
        description="Longer side of a frame; checked from the header before any decoding.",
    )

    upload_idle_timeout_s: float = Field(
        default=30, gt=0, description="An upload that sends nothing this long is dropped (408)."
    )
    upload_timeout_s: float = Field(
        default=600, gt=0, description="An upload still arriving after this long is dropped (408)."
    )

    # Access.
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="Comma-separated; empty means no authentication."
    )
    operator_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated keys that may read /metrics (totals over every tenant) when "
        "API keys are set; tenant keys may not.",
    )
    rate_limit_per_minute: int = Field(default=120, ge=0, description="Per API key; 0 disables.")
    auth_failures_per_minute: int = Field(
        default=20,
        ge=1,
        description="Requests without a valid key one client address may make a minute (with "
        "keys set); past that every request from it is 429 until the minute ends.",
    )
    max_jobs_in_flight_per_key: int = Field(
        default=MAX_JOBS_IN_FLIGHT_PER_KEY,
        ge=0,
        description="Jobs one API key may have queued or running (with keys set); 0 disables.",
    )

    # Jobs.
    retention_s: int = Field(
        default=24 * 3600, gt=0, description="How long uploads and results stay."
    )
    job_deadline_s: float = Field(
        default=600, gt=0, description="A detection running longer fails."
    )
    max_attempts: int = Field(default=3, ge=1, description="Worker deaths tolerated per job.")
    heartbeat_interval_s: float = Field(default=10, gt=0)
    stale_after_s: float = Field(
        default=60, gt=0, description="A running job whose worker was silent this long is requeued."
    )
    sweep_interval_s: float = Field(default=10, gt=0)
    queue_timeout_s: float = Field(
        default=QUEUE_TIMEOUT_S,
        gt=0,
        description="A queued job no worker took this long after its message was sent is sent "
        "again (its message may be lost), and fails after max_queue_sends sends.",
    )
    max_queue_sends: int = Field(default=3, ge=1)

    # Webhooks.
    webhook_secret: SecretStr | None = None
    webhook_max_attempts: int = Field(default=5, ge=1)
    webhook_backoff_s: float = Field(default=2.0, gt=0, description="Doubles after each failure.")
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    webhook_allow_private: bool = Field(
        default=False,
        description="Let callback URLs reach loopback, private and link-local addresses.",
    )

    # Detection defaults (what workers load and how they score).
    registry_path: Path | None = None
    device: str = "auto"
    default_models: Annotated[list[str] | None, NoDecode] = None
    frames: int = Field(default=DEFAULT_FRAMES, ge=1)
    policy: str | None = None  # None: the policy the ensemble's presets were measured under
    # None: the default ensemble's measured preset (`preset`, else its default one).
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    preset: PresetName | None = None
    precision: Precision = "auto"

    @field_validator("api_keys", "operator_keys", "default_models", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _coherent(self) -> Settings:
        if self.stale_after_s <= 2 * self.heartbeat_interval_s:
            raise ValueError(
                "stale_after_s must exceed two heartbeat intervals, or live workers look dead"
            )
        if self.broker_visibility_timeout_s <= self.job_deadline_s:
            raise ValueError(
                "broker_visibility_timeout_s must exceed job_deadline_s, or Redis hands a running "
                "job to a second worker"
            )
        return self

    # Derived locations -------------------------------------------------------------------

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def broker_dir(self) -> Path:
        return self.data_dir / "broker"

    @property
    def embedded(self) -> bool:
        """True for the single-machine default: filesystem broker, no Redis."""
        return self.broker.startswith("filesystem://")

    @property
    def broker(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def backend(self) -> str:
        return self.result_backend or f"db+sqlite:///{self.data_dir / 'celery-results.sqlite'}"

    @property
    def jobstore(self) -> str:
        return self.jobstore_url or f"sqlite:///{self.data_dir / 'jobs.sqlite'}"

    def upload_path(self, key: str) -> Path:
        """Where an upload key (relative to the data directory) lives; refuses keys outside it."""
        path = (self.data_dir / key).resolve()
        if not path.is_relative_to(self.uploads_dir):
            raise ConfigError(f"upload key {key!r} points outside {self.uploads_dir}")
        return path

    def broker_transport_options(self) -> dict[str, Any]:
        if self.embedded:
            queue = str(self.broker_dir / "queue")
            return {
                "data_folder_in": queue,  # producer and consumer share one folder
                "data_folder_out": queue,
                "control_folder": str(self.broker_dir / "control"),
                "processed_folder": str(self.broker_dir / "processed"),
                "store_processed": False,
            }
        options: dict[str, Any] = {"visibility_timeout": self.broker_visibility_timeout_s}
        if self.broker_key_prefix:
            options["global_keyprefix"] = self.broker_key_prefix
        return options

    def backend_transport_options(self) -> dict[str, Any]:
        if self.backend.startswith(("redis://", "rediss://")) and self.broker_key_prefix:
            return {"global_keyprefix": self.broker_key_prefix}
        return {}

    def prepare_data_dir(self) -> None:
        """Create the data directory tree the embedded broker and uploads need, and keep what
        this process writes from now on to its own user (umask 077): uploads, the job store,
        broker messages and results hold clients' data, and are written by several libraries
        (SQLite, kombu, SQLAlchemy), so the process mask is the one place that covers them all.
        Called by the gateway and the workers when they start."""
        os.umask(DATA_UMASK)
        for folder in (self.data_dir, self.uploads_dir):
            folder.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        if self.embedded:
            for name in ("queue", "control", "processed"):
                (self.broker_dir / name).mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)

    def in_flight_limit(self) -> int | None:
        """The per-key limit on jobs in flight, or None where it does not apply (no keys: one
        tenant, or the limit switched off)."""
        if not self.api_keys or self.max_jobs_in_flight_per_key == 0:
            return None
        return self.max_jobs_in_flight_per_key

    # Detection ---------------------------------------------------------------------------

    def detector_config(self) -> DetectorConfig:
        return DetectorConfig(
            registry_path=self.registry_path,
            models=tuple(self.default_models) if self.default_models else None,
            device=self.device,
            frames=self.frames,
            policy=self.policy,
            threshold=self.threshold,
            preset=self.preset,
            precision=self.precision,
        )

    # Security ----------------------------------------------------------------------------

    def insecure_reasons(self, host: str | None = None) -> list[str]:
        """Why serving on `host` with these settings would be unsafe; empty when it is fine."""
        host = host or self.host
        if is_loopback(host):
            return []
        reasons = []
        if not self.api_keys:
            reasons.append(
                f"binding to {host} without API keys lets anyone on the network use the service: "
                f"set {ENV_PREFIX}API_KEYS=<key1,key2> or bind to 127.0.0.1"
            )
        keys = [*self.api_keys, *self.operator_keys]
        weak = [k for k in keys if len(k.get_secret_value()) < MIN_API_KEY_LENGTH]
        if weak:
            reasons.append(
                f"{len(weak)} API or operator key(s) shorter than {MIN_API_KEY_LENGTH} characters: "
                "generate keys with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        return reasons

    def check_secure(self, host: str | None = None) -> None:
        reasons = self.insecure_reasons(host)
        if reasons:
            raise InsecureSettingsError("refusing insecure settings:\n- " + "\n- ".join(reasons))

    def webhook_key(self) -> bytes | None:
        """The HMAC key for webhook signatures, or None when webhooks cannot be signed.

        Embedded, an unset secret is generated once into the data directory (mode 0600) so the
        gateway and its worker agree; in production it must be configured on every host.
        """
        if self.webhook_secret is not None:
            return self.webhook_secret.get_secret_value().encode()
        if not self.embedded:
            return None
        path = self.data_dir / WEBHOOK_SECRET_FILE
        if not path.exists():
            # Write aside, then link into place: a racing process sees the whole key or none.
            self.data_dir.mkdir(parents=True, exist_ok=True)
            draft = path.with_name(f".{WEBHOOK_SECRET_FILE}.{os.getpid()}")
            descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_hex(WEBHOOK_SECRET_BYTES))
            try:
                os.link(draft, path)
            except FileExistsError:
                pass  # another process won the race; use its key
            finally:
                draft.unlink()
        return path.read_text().strip().encode()
