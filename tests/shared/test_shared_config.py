"""``shared_state_url`` / ``order_journal_url`` on the configuration root."""

from __future__ import annotations

from pathlib import Path

import pytest

from virtuoso_resilience.config import ResilienceConfiguration
from virtuoso_resilience.errors import ConfigurationError
from virtuoso_resilience.shared import RedisJournal, SqliteJournal, open_shared_state

SECRET = "s3cr3t-Pw"


def test_off_by_default_and_the_journal_defaults_to_sqlite(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VIRTUOSO_SHARED_STATE_URL", raising=False)
    monkeypatch.delenv("VIRTUOSO_ORDER_JOURNAL_URL", raising=False)
    config = ResilienceConfiguration()
    assert config.shared_state_url is None
    assert config.journal_url() == "sqlite:///virtuoso-orders.db"


def test_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIRTUOSO_SHARED_STATE_URL", f"redis://:{SECRET}@10.0.0.5:6380/2")
    monkeypatch.setenv("VIRTUOSO_ORDER_JOURNAL_URL", "sqlite:////var/lib/bot/orders.db")
    config = ResilienceConfiguration()
    assert config.shared_state_url is not None
    assert config.shared_state_url.get_secret_value() == f"redis://:{SECRET}@10.0.0.5:6380/2"
    assert config.journal_url() == "sqlite:////var/lib/bot/orders.db"
    assert SECRET not in repr(config) and SECRET not in str(config.to_dict())


def test_a_bad_environment_value_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIRTUOSO_SHARED_STATE_URL", f"http://:{SECRET}@host/")
    with pytest.raises(ConfigurationError) as info:
        ResilienceConfiguration()
    message = str(info.value)
    assert "shared_state_url" in message and "redis://" in message
    assert SECRET not in message


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("shared_state_url", f"memcached://:{SECRET}@h:1", "scheme"),
        ("shared_state_url", f"redis://:{SECRET}@:1/0", "host"),
        ("shared_state_url", f"redis://:{SECRET}@h:99999/0", "valid URL"),
        ("order_journal_url", "sqlite://", "file"),
        ("order_journal_url", f"ftp://u:{SECRET}@h/x", "scheme"),
        ("shared_state_url", True, "string"),
        ("shared_state_url", 5, "string"),
    ],
)
def test_bad_urls_name_the_field_never_the_password(field: str, value: object, words: str) -> None:
    config = ResilienceConfiguration()
    with pytest.raises(ConfigurationError) as info:
        setattr(config, field, value)
    message = str(info.value)
    assert field in message and words in message
    assert SECRET not in message
    assert getattr(config, field) is None  # the old value kept


def test_assignment_is_validated_and_masked() -> None:
    config = ResilienceConfiguration()
    config.shared_state_url = f"rediss://user:{SECRET}@cache.internal:6380/0"  # type: ignore[assignment]
    assert SECRET not in repr(config)
    config.order_journal_url = "redis://127.0.0.1:6390/1"  # type: ignore[assignment]
    assert config.journal_url() == "redis://127.0.0.1:6390/1"


async def test_open_shared_state_follows_the_two_settings(tmp_path: Path) -> None:
    off = open_shared_state(ResilienceConfiguration(order_journal_url=f"sqlite:///{tmp_path}/j.db"))
    assert off.link is None and isinstance(off.journal, SqliteJournal)
    assert off.journal.path == f"{tmp_path}/j.db"
    await off.close()
    url = f"redis://:{SECRET}@127.0.0.1:1/0"
    on = open_shared_state(ResilienceConfiguration(shared_state_url=url, order_journal_url=url))
    assert on.link is not None and isinstance(on.journal, RedisJournal)
    assert SECRET not in repr(on)
    await on.close()
