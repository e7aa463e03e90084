"""Configuration: safe local defaults, and production refusing them."""

from __future__ import annotations

import pytest

from app.config import ConfigError, load_config

STRONG = "s" * 48


@pytest.fixture
def env(monkeypatch):
    for name in (
        "FHIRGATE_ENV",
        "SECRET_KEY",
        "FHIRGATE_KEK",
        "FHIRGATE_BASE_URL",
        "DATABASE_URL",
        "REDIS_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_development_defaults_are_random_and_kept(env, tmp_path):
    first = load_config(tmp_path)
    second = load_config(tmp_path)
    assert first["SECRET_KEY"] == second["SECRET_KEY"] and len(first["SECRET_KEY"]) >= 48
    assert first["FHIRGATE_KEK"] != first["SECRET_KEY"]
    assert load_config(tmp_path / "elsewhere")["SECRET_KEY"] != first["SECRET_KEY"]
    assert first["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'fhirgate.db'}"
    assert first["RATELIMIT_STORAGE_URI"] == "fhirgate-memory://"
    assert (tmp_path / "dev-secrets.json").stat().st_mode & 0o077 == 0


def test_redis_url_moves_rate_limits_to_redis(env, tmp_path):
    env.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    assert load_config(tmp_path)["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    "settings,complaint",
    [
        ({}, "SECRET_KEY"),
        ({"SECRET_KEY": STRONG}, "FHIRGATE_KEK"),
        ({"SECRET_KEY": "short", "FHIRGATE_KEK": STRONG}, "SECRET_KEY"),
        ({"SECRET_KEY": STRONG, "FHIRGATE_KEK": STRONG}, "FHIRGATE_BASE_URL"),
        (
            {"SECRET_KEY": STRONG, "FHIRGATE_KEK": STRONG, "FHIRGATE_BASE_URL": "http://fhir.example.org"},
            "https",
        ),
    ],
)
def test_production_refuses_development_defaults(env, tmp_path, settings, complaint):
    env.setenv("FHIRGATE_ENV", "production")
    for name, value in settings.items():
        env.setenv(name, value)
    with pytest.raises(ConfigError, match=complaint):
        load_config(tmp_path)
    assert not (tmp_path / "dev-secrets.json").exists()


def test_production_starts_with_its_own_secrets(env, tmp_path):
    env.setenv("FHIRGATE_ENV", "production")
    env.setenv("SECRET_KEY", STRONG)
    env.setenv("FHIRGATE_KEK", "k" * 40)
    env.setenv("FHIRGATE_BASE_URL", "https://fhir.example.org/")
    config = load_config(tmp_path)
    assert config["FHIRGATE_BASE_URL"] == "https://fhir.example.org"
    assert config["SECRET_KEY"] == STRONG


def test_bad_numbers_are_clear_errors(env, tmp_path):
    env.setenv("FHIRGATE_TOKEN_TTL", "five minutes")
    with pytest.raises(ConfigError, match="FHIRGATE_TOKEN_TTL"):
        load_config(tmp_path)


@pytest.mark.parametrize("value", ["0/minute", "100/minute;5/second", "lots"])
def test_a_fhir_share_must_be_one_positive_rate(monkeypatch, tmp_path, value):
    monkeypatch.setenv("FHIRGATE_FHIR_CLIENT_LIMIT", value)
    with pytest.raises(ConfigError, match="FHIRGATE_FHIR_CLIENT_LIMIT"):
        load_config(tmp_path)
