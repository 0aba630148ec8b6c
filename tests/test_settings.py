"""Settings: environment and .env parsing, embedded defaults, production refusals."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from fakewatch.jobs import open_store
from fakewatch.jobs.queue import make_celery
from fakewatch.settings import InsecureSettingsError, Settings
from models.errors import ConfigError

STRONG_KEY = "k" * 32


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No FAKEWATCH_* from the caller's shell, and no .env from the repository."""
    import os

    for name in list(os.environ):
        if name.startswith("FAKEWATCH_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_embedded_default_keeps_everything_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings()
    assert settings.data_dir == tmp_path / ".fakewatch"
    assert settings.embedded
    assert settings.broker == "filesystem://"
    assert settings.backend == f"db+sqlite:///{tmp_path}/.fakewatch/celery-results.sqlite"
    assert settings.jobstore == f"sqlite:///{tmp_path}/.fakewatch/jobs.sqlite"
    options = settings.broker_transport_options()
    assert options["data_folder_in"] == options["data_folder_out"]
    assert all(
        str(tmp_path / ".fakewatch") in str(options[k])
        for k in ("data_folder_in", "control_folder")
    )
    settings.prepare_data_dir()
    assert (settings.broker_dir / "queue").is_dir() and settings.uploads_dir.is_dir()
    assert open_store(settings).list().total == 0


def test_environment_and_dotenv_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("FAKEWATCH_FRAMES=12\nFAKEWATCH_POLICY=mean\n")
    monkeypatch.setenv("FAKEWATCH_API_KEYS", f" {STRONG_KEY} , second-key-0123456789 ")
    monkeypatch.setenv("FAKEWATCH_DEFAULT_MODELS", "tiny-meso,tiny-hybrid")
    monkeypatch.setenv("FAKEWATCH_REGISTRY_PATH", "/srv/registry.toml")
    monkeypatch.setenv("FAKEWATCH_DEVICE", "cuda:1")
    monkeypatch.setenv("FAKEWATCH_THRESHOLD", "0.7")
    settings = Settings()
    assert [k.get_secret_value() for k in settings.api_keys] == [
        STRONG_KEY,
        "second-key-0123456789",
    ]
    config = settings.detector_config()
    assert config.models == ("tiny-meso", "tiny-hybrid")
    assert config.registry_path == Path("/srv/registry.toml")
    assert (config.device, config.frames, config.policy, config.threshold) == (
        "cuda:1",
        12,
        "mean",
        0.7,
    )
    assert "second-key" not in repr(settings)  # keys never show up in logs


def test_redis_settings_configure_production_queueing() -> None:
    settings = Settings(
        broker_url="redis://redis:6379/0",
        result_backend="redis://redis:6379/1",
        jobstore_url="redis://redis:6379/2",
        broker_key_prefix="site-a:",
        job_deadline_s=900,
        broker_visibility_timeout_s=1800,
    )
    assert not settings.embedded
    assert settings.broker_transport_options() == {
        "visibility_timeout": 1800,
        "global_keyprefix": "site-a:",
    }
    assert settings.backend_transport_options() == {"global_keyprefix": "site-a:"}
    conf = make_celery(settings, "test").conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_routes["fakewatch.detect"] == {"queue": "gpu"}


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"heartbeat_interval_s": 30, "stale_after_s": 60}, "stale_after_s"),
        ({"job_deadline_s": 4000}, "broker_visibility_timeout_s"),
        ({"threshold": 1.5}, "threshold"),
        ({"max_upload_bytes": 0}, "max_upload_bytes"),
    ],
)
def test_incoherent_settings_are_refused(overrides: dict[str, float], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        Settings(**overrides)


def test_public_bind_without_strong_keys_is_refused() -> None:
    with pytest.raises(InsecureSettingsError, match="FAKEWATCH_API_KEYS"):
        Settings().check_secure("0.0.0.0")
    with pytest.raises(InsecureSettingsError, match="shorter than 16"):
        Settings(api_keys="short").check_secure("10.0.0.5")
    for loopback in ("127.0.0.1", "localhost", "::1"):
        Settings().check_secure(loopback)
    Settings(api_keys=STRONG_KEY).check_secure("0.0.0.0")


def test_embedded_webhook_key_is_generated_once_and_private(tmp_path: Path) -> None:
    first = Settings().webhook_key()
    assert first is not None and len(first) == 64
    assert Settings().webhook_key() == first
    secret_file = tmp_path / ".fakewatch" / "webhook-secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert Settings(webhook_secret="configured").webhook_key() == b"configured"
    assert Settings(broker_url="redis://redis:6379/0").webhook_key() is None


def test_upload_keys_cannot_escape_the_uploads_folder() -> None:
    settings = Settings()
    assert settings.upload_path("uploads/abc.mp4") == settings.uploads_dir / "abc.mp4"
    with pytest.raises(ConfigError):
        settings.upload_path("uploads/../jobs.sqlite")


def test_unknown_job_store_scheme_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="sqlite:///"):
        open_store(Settings(jobstore_url="postgres://db/jobs"))


@pytest.mark.parametrize(
    "bad", [{"stale_after_s": "1"}, {"port": "not-a-port"}, {"frames": "0"}]
)
def test_settings_errors_never_show_keys_or_secrets(bad: dict[str, object]) -> None:
    secret, key = "webhook-secret-0123456789abcdef", "api-key-0123456789abcdef"
    with pytest.raises(ValueError) as raised:
        Settings(_env_file=None, webhook_secret=secret, api_keys=key, **bad)  # type: ignore[arg-type]
    message = str(raised.value)
    assert secret[-6:] not in message and key[-6:] not in message
