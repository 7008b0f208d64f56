"""Settings from arguments, environment variables and a TOML file, over a preset."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

from virtuoso_resilience import (
    ConfigurationError,
    ResilienceConfiguration,
    ResilienceSettings,
    ServiceSettings,
    create_development_resilience_config,
    create_production_resilience_config,
    load_configuration,
    load_settings,
)

SECRETS = {
    "BYBIT_API_KEY": "key-DO-NOT-LEAK-1234",
    "BYBIT_API_SECRET": "secret-DO-NOT-LEAK-5678",
    "DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/1/token-DO-NOT-LEAK",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("VIRTUOSO_") or name in {
            "BYBIT_API_KEY",
            "BYBIT_API_SECRET",
            "MEMCACHED_HOST",
            "MEMCACHED_PORT",
            "REDIS_HOST",
            "REDIS_PORT",
            "DISCORD_WEBHOOK_URL",
        }:
            monkeypatch.delenv(name)


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "resilience.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_nothing_set_is_the_production_preset() -> None:
    settings = load_settings()
    assert settings.preset == "production"
    assert settings.resilience == create_production_resilience_config()
    assert settings.services == ServiceSettings()
    assert settings.services.bybit_api_key is None
    assert (settings.services.redis_host, settings.services.redis_port) == ("127.0.0.1", 6379)
    assert (settings.services.memcached_port, settings.sources) == (11211, {})


def test_seed_variable_names_and_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MEMCACHED_HOST", "cache.internal")
    monkeypatch.setenv("MEMCACHED_PORT", "11311")
    monkeypatch.setenv("REDIS_HOST", "10.0.0.7")
    monkeypatch.setenv("REDIS_PORT", "6380")
    monkeypatch.setenv("VIRTUOSO_DEFAULT_FAILURE_THRESHOLD", "8")
    monkeypatch.setenv("VIRTUOSO_ENABLE_HEALTH_CHECKS", "off")
    monkeypatch.setenv("VIRTUOSO_DEFAULT_CALL_TIMEOUT", "2.5")
    settings = load_settings()
    services = settings.services
    assert services.bybit_api_key == SecretStr(SECRETS["BYBIT_API_KEY"])
    assert services.bybit_api_secret is not None
    assert services.bybit_api_secret.get_secret_value() == SECRETS["BYBIT_API_SECRET"]
    assert services.discord_webhook_url is not None
    assert services.discord_webhook_url.get_secret_value() == SECRETS["DISCORD_WEBHOOK_URL"]
    assert (services.memcached_host, services.memcached_port) == ("cache.internal", 11311)
    assert (services.redis_host, services.redis_port) == ("10.0.0.7", 6380)
    assert settings.resilience.default_failure_threshold == 8
    assert settings.resilience.enable_health_checks is False
    assert settings.resilience.default_call_timeout == 2.5
    assert settings.sources["redis_port"] == "environment"
    assert settings.sources["default_failure_threshold"] == "environment"


def test_precedence_arguments_over_environment_over_file_over_preset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _toml(
        tmp_path,
        'preset = "development"\n'
        "default_failure_threshold = 11\n"
        "default_max_retries = 6\n"
        "default_success_threshold = 4\n"
        "redis_port = 7000\n",
    )
    monkeypatch.setenv("VIRTUOSO_DEFAULT_FAILURE_THRESHOLD", "12")
    monkeypatch.setenv("VIRTUOSO_DEFAULT_MAX_RETRIES", "7")
    monkeypatch.setenv("REDIS_PORT", "7001")
    settings = load_settings(path, default_max_retries=9)
    config = settings.resilience
    assert settings.preset == "development"  # from the file
    assert config.default_max_retries == 9  # argument beats environment and file
    assert config.default_failure_threshold == 12  # environment beats file
    assert config.default_success_threshold == 4  # file beats preset
    assert config.default_circuit_timeout == 30.0  # the development preset
    assert settings.services.redis_port == 7001
    assert settings.sources == {
        "preset": "file",
        "default_failure_threshold": "environment",
        "default_max_retries": "argument",
        "default_success_threshold": "file",
        "redis_port": "environment",
    }


def test_preset_from_environment_and_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIRTUOSO_PRESET", "Development")
    assert load_settings().resilience == create_development_resilience_config()
    assert load_settings(preset="production").resilience == create_production_resilience_config()


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _toml(tmp_path, "default_health_check_interval = 15.0\n")
    monkeypatch.setenv("VIRTUOSO_CONFIG_FILE", str(path))
    assert load_configuration().default_health_check_interval == 15.0


def test_configuration_load_is_the_resilience_part(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIRTUOSO_DEFAULT_MAX_DELAY", "45")
    config = load_configuration(default_base_delay=2.0)
    assert (config.default_base_delay, config.default_max_delay) == (2.0, 45.0)
    assert load_configuration(preset="development").default_failure_threshold == 8


def test_existing_construction_unchanged() -> None:
    assert ResilienceConfiguration(default_failure_threshold=8).default_failure_threshold == 8
    with pytest.raises(ConfigurationError):
        ResilienceConfiguration(default_failure_threshold="8")  # type: ignore[arg-type]


def test_hostile_environment_one_message_every_field(monkeypatch: pytest.MonkeyPatch) -> None:
    huge = "9" * 1_000_000
    monkeypatch.setenv("VIRTUOSO_DEFAULT_FAILURE_THRESHOLD", "１０")  # fullwidth digits
    monkeypatch.setenv("VIRTUOSO_DEFAULT_SUCCESS_THRESHOLD", "²")
    monkeypatch.setenv("VIRTUOSO_DEFAULT_CIRCUIT_TIMEOUT", "nan")
    monkeypatch.setenv("VIRTUOSO_DEFAULT_MAX_DELAY", "inf")
    monkeypatch.setenv("VIRTUOSO_DEFAULT_CONNECTION_TIMEOUT", "-inf")
    monkeypatch.setenv("VIRTUOSO_DEFAULT_MAX_CONNECTIONS", "٣")
    monkeypatch.setenv("VIRTUOSO_DEFAULT_HEALTH_CHECK_INTERVAL", huge + ".5")
    monkeypatch.setenv("VIRTUOSO_ENABLE_HEALTH_CHECKS", "")
    monkeypatch.setenv("REDIS_PORT", "65536")
    monkeypatch.setenv("MEMCACHED_PORT", "")
    monkeypatch.setenv("MEMCACHED_HOST", "")
    monkeypatch.setenv("REDIS_HOST", "bad host")
    monkeypatch.setenv("VIRTUOSO_PRESET", "staging")
    monkeypatch.setenv("BYBIT_API_KEY", SECRETS["BYBIT_API_KEY"])
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    error = caught.value
    assert set(error.fields) == {
        "preset",
        "default_failure_threshold",
        "default_success_threshold",
        "default_circuit_timeout",
        "default_max_delay",
        "default_connection_timeout",
        "default_max_connections",
        "default_health_check_interval",
        "enable_health_checks",
        "redis_port",
        "memcached_port",
        "memcached_host",
        "redis_host",
    }
    message = str(error)
    assert message.startswith("13 invalid configuration values:")
    assert "VIRTUOSO_DEFAULT_FAILURE_THRESHOLD from the environment" in message
    assert "'１０'" in message and "'²'" in message and "'٣'" in message
    assert "must be 'production' or 'development'" in message
    assert "must be an integer >= 1 <= 65535" in message
    assert "REDIS_PORT from the environment" in message
    assert len(message) < 5_000  # the 1 MB value is cut
    assert SECRETS["BYBIT_API_KEY"] not in message


def test_empty_string_turns_an_optional_stage_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIRTUOSO_DEFAULT_CALL_TIMEOUT", "")
    monkeypatch.setenv("VIRTUOSO_DEFAULT_RATE_LIMIT", "none")
    monkeypatch.setenv("BYBIT_API_KEY", "")
    settings = load_settings(preset="production")
    assert settings.resilience.default_call_timeout is None
    assert settings.resilience.default_rate_limit is None
    assert settings.services.bybit_api_key is None


def test_cross_field_rule_across_sources_names_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _toml(tmp_path, "default_base_delay = 10.0\n")
    monkeypatch.setenv("VIRTUOSO_DEFAULT_MAX_DELAY", "5")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(path)
    (error,) = caught.value.errors
    assert error.field == "default_base_delay, default_max_delay"
    assert "default_base_delay from the file" in error.allowed
    assert "VIRTUOSO_DEFAULT_MAX_DELAY from the environment" in error.allowed


def test_file_problems_are_reported_with_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _toml(
        tmp_path,
        'default_failure_treshold = 3\nbybit_api_key = "file-key-DO-NOT-LEAK"\n'
        "default_max_retries = true\n",
    )
    monkeypatch.setenv("REDIS_PORT", "abc")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(path, bogus_argument=1)
    message = str(caught.value)
    assert set(caught.value.fields) == {
        "default_failure_treshold",
        "bogus_argument",
        "default_max_retries",
        "redis_port",
    }
    assert "unknown key" in message and "allowed keys: preset, default_failure_threshold" in message
    assert "file-key-DO-NOT-LEAK" not in message


def test_bad_and_missing_files(tmp_path: Path) -> None:
    broken = _toml(tmp_path, "default_failure_threshold = = 3\n")
    with pytest.raises(ConfigurationError, match="is not valid TOML"):
        load_settings(broken)
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_secrets_masked_everywhere(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.DEBUG, logger="virtuoso_resilience")
    settings = load_settings()
    services = settings.services
    outputs = [
        repr(settings),
        str(settings),
        repr(services),
        str(services),
        str(services.model_dump()),
        services.model_dump_json(),
        str(services.model_dump(mode="json")),
        "\n".join(settings.describe()),
        caplog.text,
    ]
    assert "settings loaded" in caplog.text
    for output in outputs:
        for secret in SECRETS.values():
            assert secret not in output
    assert "**********" in services.model_dump_json()

    # Errors: a bad value next to the secrets, and a secret rejected itself.
    monkeypatch.setenv("REDIS_PORT", "0")
    caplog.clear()
    with pytest.raises(ConfigurationError) as caught:
        load_settings(bybit_api_key=12345)
    text = str(caught.value) + repr(caught.value.errors) + caplog.text
    assert "bybit_api_key" in text and "12345" not in text
    for secret in SECRETS.values():
        assert secret not in text


def test_settings_are_frozen() -> None:
    settings = load_settings()
    assert isinstance(settings, ResilienceSettings)
    with pytest.raises(AttributeError):
        settings.preset = "development"  # type: ignore[misc]
