"""ResilienceConfiguration: fields, bounds, cross-field rules, presets, loading."""

from __future__ import annotations

import importlib
import re
import typing
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import Field, SecretStr

import virtuoso_resilience
from virtuoso_resilience.config import (
    ResilienceConfiguration,
    create_default_resilience_config,
    create_development_resilience_config,
    create_production_resilience_config,
)
from virtuoso_resilience.errors import ConfigurationError

config_module = importlib.import_module("virtuoso_resilience.config")
classify_module = importlib.import_module("virtuoso_resilience.classify")

SEED_PRODUCTION: dict[str, Any] = {
    "default_failure_threshold": 5,
    "default_success_threshold": 3,
    "default_circuit_timeout": 60.0,
    "default_max_retries": 3,
    "default_base_delay": 1.0,
    "default_max_delay": 30.0,
    "default_max_connections": 50,
    "default_max_connections_per_host": 20,
    "default_connection_timeout": 10.0,
    "default_health_check_interval": 60.0,
    "enable_health_checks": True,
}
OPTIONAL_OFF: dict[str, Any] = {
    "default_call_timeout": None,
    "default_max_concurrent": None,
    "default_rate_limit": None,
    "default_rate_limit_burst": None,
    "default_retry_max_elapsed": None,
    "shared_state_url": None,
    "order_journal_url": None,
}

# field -> (allowed range as worded in the error, bad values, good values)
BOUNDS: dict[str, tuple[str, list[Any], list[Any]]] = {
    "default_failure_threshold": ("an integer >= 1", [0, -1], [1, 1000]),
    "default_success_threshold": ("an integer >= 1", [0, -3], [1, 10]),
    "default_circuit_timeout": ("a number > 0", [0, 0.0, -1.5], [0.001, 600]),
    "default_max_retries": ("an integer >= 0", [-1], [0, 20]),
    "default_base_delay": ("a number >= 0", [-0.001, -1], [0, 0.0, 29.0]),
    "default_max_delay": ("a number > 0", [0, 0.0, -1.0], [1.0, 300.0]),
    "default_max_connections": ("an integer >= 1", [0, -10], [20, 500]),
    "default_max_connections_per_host": ("an integer >= 0", [-1], [0, 1, 50]),
    "default_connection_timeout": ("a number > 0", [0, -0.5], [0.1, 30]),
    "default_health_check_interval": ("a number > 0", [0.0, -60.0], [0.5, 3600]),
    "default_call_timeout": ("a number or None > 0", [0, -1.0], [None, 2.5]),
    "default_max_concurrent": ("an integer or None >= 1", [0, -2], [None, 1, 64]),
    "default_rate_limit": ("a number or None >= 1e-09", [0, -10.0], [None, 0.5, 100]),
    "default_retry_max_elapsed": ("a number or None > 0", [0.0, -5], [None, 120.0]),
}
WRONG_TYPES: dict[str, list[Any]] = {
    "int": ["5", 5.0, True, None, [5]],
    "float": ["1.0", True, None, "fast"],
    "optional": ["2", True, [1]],
    "bool": [1, 0, "true", None],
}
FIELD_TYPES: dict[str, str] = {
    "default_failure_threshold": "int",
    "default_success_threshold": "int",
    "default_circuit_timeout": "float",
    "default_max_retries": "int",
    "default_base_delay": "float",
    "default_max_delay": "float",
    "default_max_connections": "int",
    "default_max_connections_per_host": "int",
    "default_connection_timeout": "float",
    "default_health_check_interval": "float",
    "enable_health_checks": "bool",
    "default_call_timeout": "optional",
    "default_max_concurrent": "optional",
    "default_rate_limit": "optional",
    "default_rate_limit_burst": "optional",
    "default_retry_max_elapsed": "optional",
    "shared_state_url": "optional",
    "order_journal_url": "optional",
}


def test_fields_are_exactly_the_documented_ones() -> None:
    assert set(ResilienceConfiguration.model_fields) == set(SEED_PRODUCTION) | set(OPTIONAL_OFF)
    assert set(FIELD_TYPES) == set(ResilienceConfiguration.model_fields)


def test_defaults_are_the_seed_production_values_with_options_off() -> None:
    assert ResilienceConfiguration().to_dict() == {**SEED_PRODUCTION, **OPTIONAL_OFF}


def test_seed_production_example_works_as_written() -> None:
    resilience_config = ResilienceConfiguration(
        # Circuit breakers
        default_failure_threshold=5,  # Conservative threshold
        default_success_threshold=3,  # Ensure recovery
        default_circuit_timeout=60.0,  # 1 minute recovery window
        # Retry policies
        default_max_retries=3,  # Balanced retry attempts
        default_base_delay=1.0,  # 1 second base delay
        default_max_delay=30.0,  # 30 second max delay
        # Connection pooling
        default_max_connections=50,  # Production capacity
        default_max_connections_per_host=20,
        default_connection_timeout=10.0,
        # Health checks
        default_health_check_interval=60.0,  # Every minute
        enable_health_checks=True,
    )
    assert resilience_config == create_production_resilience_config()


def test_seed_development_example_works_as_written() -> None:
    resilience_config = ResilienceConfiguration(
        # More permissive for testing
        default_failure_threshold=8,
        default_circuit_timeout=30.0,
        default_max_retries=4,
        default_health_check_interval=30.0,
    )
    assert resilience_config == create_development_resilience_config()


def test_presets_match_the_seed_exactly() -> None:
    production = create_production_resilience_config()
    assert production.to_dict() == {**SEED_PRODUCTION, **OPTIONAL_OFF}
    development = create_development_resilience_config()
    assert development.to_dict() == {
        **SEED_PRODUCTION,
        **OPTIONAL_OFF,
        "default_failure_threshold": 8,
        "default_circuit_timeout": 30.0,
        "default_max_retries": 4,
        "default_health_check_interval": 30.0,
    }
    assert create_default_resilience_config() == production
    assert ResilienceConfiguration.preset("production") == production
    assert ResilienceConfiguration.preset("development") == development
    # Every call builds a fresh object: changing one does not change the preset.
    production.default_failure_threshold = 9
    assert create_production_resilience_config().default_failure_threshold == 5


@pytest.mark.parametrize("name", ["staging", "Production", "", None, 1])
def test_unknown_preset_names_the_allowed_ones(name: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        ResilienceConfiguration.preset(name)
    message = str(info.value)
    assert "'production'" in message and "'development'" in message
    assert info.value.fields == ("preset",)


# --------------------------------------------------------------------------
# Per-field bounds and types


def _cases(kind: str) -> list[tuple[str, Any]]:
    cases: list[tuple[str, Any]] = []
    for field, (_, bad, good) in BOUNDS.items():
        for value in bad if kind == "bad" else good:
            cases.append((field, value))
    return cases


@pytest.mark.parametrize(("field", "value"), _cases("bad"))
def test_out_of_range_values_are_rejected_on_creation(field: str, value: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        ResilienceConfiguration(**{field: value})
    assert info.value.fields == (field,)
    message = str(info.value)
    assert f"ResilienceConfiguration.{field}={value!r}" in message
    assert f"must be {BOUNDS[field][0]}" in message


@pytest.mark.parametrize(("field", "value"), _cases("bad"))
def test_out_of_range_assignment_keeps_the_old_value(field: str, value: Any) -> None:
    config = ResilienceConfiguration()
    before = config.to_dict()
    with pytest.raises(ConfigurationError) as info:
        setattr(config, field, value)
    assert info.value.fields == (field,)
    assert f"must be {BOUNDS[field][0]}" in str(info.value)
    assert config.to_dict() == before


@pytest.mark.parametrize(("field", "value"), _cases("good"))
def test_in_range_values_are_accepted(field: str, value: Any) -> None:
    created = ResilienceConfiguration(**{field: value})
    assert getattr(created, field) == value
    assigned = ResilienceConfiguration()
    setattr(assigned, field, value)
    assert getattr(assigned, field) == value


@pytest.mark.parametrize(
    ("field", "value"),
    [(field, value) for field, kind in FIELD_TYPES.items() for value in WRONG_TYPES[kind]],
)
def test_wrong_types_are_rejected_and_the_old_value_kept(field: str, value: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        ResilienceConfiguration(**{field: value})
    assert info.value.fields == (field,)
    assert "must be" in str(info.value)
    config = ResilienceConfiguration()
    before = getattr(config, field)
    with pytest.raises(ConfigurationError):
        setattr(config, field, value)
    assert getattr(config, field) == before


def _admits_float(annotation: Any) -> bool:
    if annotation is float:
        return True
    if typing.get_origin(annotation) is typing.Annotated:
        return _admits_float(typing.get_args(annotation)[0])
    return any(_admits_float(arg) for arg in typing.get_args(annotation))


FLOAT_FIELDS = [
    name
    for name, info in ResilienceConfiguration.model_fields.items()
    if _admits_float(info.annotation)
]


def test_the_float_fields_are_the_expected_ones() -> None:
    assert set(FLOAT_FIELDS) == {
        "default_circuit_timeout",
        "default_base_delay",
        "default_max_delay",
        "default_connection_timeout",
        "default_health_check_interval",
        "default_call_timeout",
        "default_rate_limit",
        "default_retry_max_elapsed",
    }


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
@pytest.mark.parametrize("field", FLOAT_FIELDS)
def test_float_fields_must_be_finite(field: str, value: float) -> None:
    with pytest.raises(ConfigurationError) as info:
        ResilienceConfiguration(**{field: value})
    assert info.value.fields == (field,)
    assert "finite" in str(info.value)
    config = ResilienceConfiguration(default_call_timeout=5.0, default_rate_limit=10.0)
    before = config.to_dict()
    with pytest.raises(ConfigurationError) as info:
        setattr(config, field, value)
    assert info.value.fields == (field,)
    assert config.to_dict() == before


def test_infinite_values_from_a_mapping_are_rejected_naming_the_root_fields() -> None:
    with pytest.raises(ConfigurationError) as info:
        ResilienceConfiguration.from_mapping(
            {
                "default_max_delay": "inf",
                "default_circuit_timeout": "Infinity",
                "default_rate_limit": "nan",
            }
        )
    assert set(info.value.fields) == {
        "default_max_delay",
        "default_circuit_timeout",
        "default_rate_limit",
    }
    assert "ResilienceConfiguration.default_max_delay=inf is invalid" in str(info.value)


def test_ints_are_accepted_for_number_fields_and_stored_as_floats() -> None:
    config = ResilienceConfiguration(default_circuit_timeout=45, default_call_timeout=3)
    assert config.default_circuit_timeout == 45.0
    assert isinstance(config.default_circuit_timeout, float)
    config.default_max_delay = 10
    assert isinstance(config.default_max_delay, float)


def test_unknown_fields_are_rejected_naming_the_allowed_ones() -> None:
    with pytest.raises(ConfigurationError) as info:
        ResilienceConfiguration(default_failure_treshold=3)
    assert info.value.fields == ("default_failure_treshold",)
    assert "allowed fields: default_base_delay" in str(info.value)
    assert "default_failure_threshold" in str(info.value)


def test_runtime_update_from_the_seed() -> None:
    config = create_production_resilience_config()
    config.default_failure_threshold = 8
    config.default_health_check_interval = 30.0
    assert config.default_failure_threshold == 8
    assert config.default_health_check_interval == 30.0


# --------------------------------------------------------------------------
# Several bad fields, cross-field rules


def test_several_bad_fields_raise_one_error_listing_them_all() -> None:
    with pytest.raises(ConfigurationError) as info:
        ResilienceConfiguration(
            default_failure_threshold=0,
            default_circuit_timeout=-1.0,
            default_max_retries="3",
            enable_health_checks="yes",
        )
    assert set(info.value.fields) == {
        "default_failure_threshold",
        "default_circuit_timeout",
        "default_max_retries",
        "enable_health_checks",
    }
    assert str(info.value).startswith("4 invalid configuration values:")


def test_base_delay_above_max_delay_names_both_fields() -> None:
    with pytest.raises(ConfigurationError) as info:
        ResilienceConfiguration(default_base_delay=40.0)
    assert info.value.fields == ("default_base_delay, default_max_delay",)
    message = str(info.value)
    assert "default_base_delay, default_max_delay=(40.0, 30.0) is invalid" in message
    assert "default_base_delay (40.0) must be <= default_max_delay (30.0)" in message
    assert ResilienceConfiguration(default_base_delay=30.0).default_base_delay == 30.0


def test_cross_field_assignment_keeps_the_old_value() -> None:
    config = ResilienceConfiguration()
    with pytest.raises(ConfigurationError) as info:
        config.default_max_delay = 0.5
    assert info.value.fields == ("default_base_delay, default_max_delay",)
    assert config.default_max_delay == 30.0
    with pytest.raises(ConfigurationError):
        config.default_base_delay = 31
    assert config.default_base_delay == 1.0
    assert "default_base_delay" not in config.model_fields_set
    # Moving both in the right order works.
    config.default_max_delay = 120.0
    config.default_base_delay = 60.0
    assert (config.default_base_delay, config.default_max_delay) == (60.0, 120.0)


def test_per_host_limit_must_fit_in_the_pool_unless_unlimited() -> None:
    with pytest.raises(ConfigurationError) as info:
        ResilienceConfiguration(default_max_connections=10)  # per host stays 20
    assert info.value.fields == ("default_max_connections_per_host, default_max_connections",)
    assert "0 (unlimited)" in str(info.value)
    unlimited = ResilienceConfiguration(
        default_max_connections=10, default_max_connections_per_host=0
    )
    assert unlimited.default_max_connections_per_host == 0
    with pytest.raises(ConfigurationError):
        unlimited.default_max_connections_per_host = 11
    assert unlimited.default_max_connections_per_host == 0
    unlimited.default_max_connections_per_host = 10
    assert unlimited.default_max_connections_per_host == 10


def test_a_burst_needs_a_rate() -> None:
    with pytest.raises(ConfigurationError) as info:
        ResilienceConfiguration(default_rate_limit_burst=5)
    assert info.value.fields == ("default_rate_limit_burst, default_rate_limit",)
    assert "a burst needs a rate" in str(info.value)
    config = ResilienceConfiguration(default_rate_limit=10.0, default_rate_limit_burst=20)
    assert config.default_rate_limit_burst == 20
    with pytest.raises(ConfigurationError):
        config.default_rate_limit = None
    assert config.default_rate_limit == 10.0
    config.default_rate_limit_burst = None
    config.default_rate_limit = None
    assert config.to_dict() == ResilienceConfiguration().to_dict()
    with pytest.raises(ConfigurationError) as bad:
        ResilienceConfiguration(default_rate_limit=1.0, default_rate_limit_burst=0)
    assert bad.value.fields == ("default_rate_limit_burst",)


def test_rules_between_fields_are_judged_once_every_field_is_valid() -> None:
    # One mechanism (pydantic model validators): field errors first, all of
    # them in one error; the rules between fields once every field is valid.
    bad = {
        "default_failure_threshold": 0,
        "default_base_delay": 50.0,
        "default_max_delay": 10.0,
        "default_max_connections": 5,
        "default_max_connections_per_host": -1,
    }
    with pytest.raises(ConfigurationError) as info:
        ResilienceConfiguration(**bad)
    assert info.value.fields == ("default_failure_threshold", "default_max_connections_per_host")
    fixed = {**bad, "default_failure_threshold": 1, "default_max_connections_per_host": 5}
    with pytest.raises(ConfigurationError) as rule:
        ResilienceConfiguration(**fixed)
    assert rule.value.fields == ("default_base_delay, default_max_delay",)


def test_a_field_bad_by_itself_is_not_also_reported_by_a_cross_rule() -> None:
    with pytest.raises(ConfigurationError) as info:
        ResilienceConfiguration(default_max_delay=-1.0)
    assert info.value.fields == ("default_max_delay",)
    config = ResilienceConfiguration()
    with pytest.raises(ConfigurationError) as assigned:
        config.default_max_delay = -1.0
    assert assigned.value.fields == ("default_max_delay",)
    assert "must be a number > 0" in str(assigned.value)


# --------------------------------------------------------------------------
# Loading and exporting


def test_from_mapping_converts_strings() -> None:
    config = ResilienceConfiguration.from_mapping(
        {
            "default_failure_threshold": "8",
            "default_circuit_timeout": "30",
            "default_base_delay": "0.5",
            "enable_health_checks": "false",
            "default_call_timeout": "2.5",
            "default_max_concurrent": " 16 ",
            "default_rate_limit": "none",
            "default_retry_max_elapsed": "",
        }
    )
    assert config.default_failure_threshold == 8
    assert config.default_circuit_timeout == 30.0
    assert config.default_base_delay == 0.5
    assert config.enable_health_checks is False
    assert config.default_call_timeout == 2.5
    assert config.default_max_concurrent == 16
    assert config.default_rate_limit is None
    assert config.default_retry_max_elapsed is None


@pytest.mark.parametrize(
    ("text", "expected"), [("true", True), ("1", True), ("on", True), ("off", False), ("no", False)]
)
def test_from_mapping_booleans(text: str, expected: bool) -> None:
    config = ResilienceConfiguration.from_mapping({"enable_health_checks": text})
    assert config.enable_health_checks is expected


def test_from_mapping_accepts_typed_values_and_round_trips() -> None:
    original = ResilienceConfiguration(
        default_failure_threshold=7, default_rate_limit=5.0, default_rate_limit_burst=10
    )
    assert ResilienceConfiguration.from_mapping(original.to_dict()) == original
    as_text = {key: str(value) for key, value in original.to_dict().items()}
    assert ResilienceConfiguration.from_mapping(as_text) == original
    assert ResilienceConfiguration(**original.to_dict()) == original


def test_from_mapping_reports_every_problem_at_once() -> None:
    with pytest.raises(ConfigurationError) as info:
        ResilienceConfiguration.from_mapping(
            {
                "default_failure_threshold": "-2",
                "enable_health_checks": "maybe",
                "default_max_delay": "soon",
                "default_base_delay": "99",
                "default_max_connections": "5",
                "unknown_key": "1",
            }
        )
    assert set(info.value.fields) == {
        "default_failure_threshold",
        "enable_health_checks",
        "default_max_delay",
        "unknown_key",
    }
    message = str(info.value)
    assert "default_failure_threshold=-2 is invalid: must be an integer >= 1" in message
    assert "default_max_delay='soon' is invalid: must be a number > 0" in message
    assert "unknown_key='1' is invalid: unknown field; allowed fields:" in message
    # default_base_delay=99 is fine by itself; its rule with the bad max_delay is skipped.
    assert "default_base_delay" not in info.value.fields


def test_from_mapping_unknown_key_names_allowed_keys() -> None:
    with pytest.raises(ConfigurationError) as info:
        ResilienceConfiguration.from_mapping({"failure_threshold": "5"})
    message = str(info.value)
    for name in ResilienceConfiguration.model_fields:
        assert name in message


def test_from_mapping_keeps_the_subclass() -> None:
    class Extended(ResilienceConfiguration):
        service_name: str = "virtuoso"

    config = Extended.from_mapping({"service_name": "trader", "default_max_retries": "1"})
    assert isinstance(config, Extended)
    assert (config.service_name, config.default_max_retries) == ("trader", 1)


def test_to_dict_is_plain_data() -> None:
    data = create_development_resilience_config().to_dict()
    assert data["default_failure_threshold"] == 8
    assert all(isinstance(v, int | float | bool | type(None)) for v in data.values())
    data["default_failure_threshold"] = 1  # a copy
    assert create_development_resilience_config().default_failure_threshold == 8


def test_repr_shows_the_values() -> None:
    text = repr(ResilienceConfiguration(default_max_retries=4))
    assert text.startswith("ResilienceConfiguration(default_failure_threshold=5,")
    assert "default_max_retries=4" in text


def test_secret_masking_and_rules_are_inherited() -> None:
    class WithSecrets(ResilienceConfiguration):
        discord_webhook_url: str | None = None
        api_key: Annotated[SecretStr | None, Field()] = None
        api_secret: Annotated[str, Field(min_length=8)] = "x" * 8

    config = WithSecrets(
        discord_webhook_url="https://discord.com/api/webhooks/1/TOKEN",
        api_key=SecretStr("KEY123"),
    )
    text = repr(config)
    assert "TOKEN" not in text and "KEY123" not in text and "xxxxxxxx" not in text
    with pytest.raises(ConfigurationError) as info:
        WithSecrets(api_secret="short", default_base_delay=99.0)
    message = str(info.value)
    assert "short" not in message
    assert info.value.fields == ("api_secret",)
    with pytest.raises(ConfigurationError) as rule:
        WithSecrets(api_secret="long enough", default_base_delay=99.0)
    assert rule.value.fields == ("default_base_delay, default_max_delay",)
    with pytest.raises(ConfigurationError):
        config.default_max_delay = 0.1
    assert config.default_max_delay == 30.0


# --------------------------------------------------------------------------
# The examples in the docs run


def _doc_blocks(name: str) -> list[str]:
    text = (Path(__file__).resolve().parents[1] / "docs" / name).read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


@pytest.mark.parametrize("doc", ["configuration.md", "classifier.md"])
def test_doc_examples_run(doc: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The package root re-exports these names; make sure they are there even
    # before the package __init__ is wired, so the examples test this code.
    for module in (config_module, classify_module):
        for public in module.__all__:
            if not hasattr(virtuoso_resilience, public):
                monkeypatch.setattr(
                    virtuoso_resilience, public, getattr(module, public), raising=False
                )
    blocks = _doc_blocks(doc)
    assert len(blocks) >= 3
    for block in blocks:
        exec(compile(block, doc, "exec"), {"__name__": "__doc_example__"})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("default_rate_limit", 1e-300),  # a wait of 1e300 s overflows every timer
        ("default_rate_limit_burst", 10**400),  # float(10**400) overflows
        ("default_circuit_timeout", 1e10),
        ("default_connection_timeout", 1e10),
        ("default_health_check_interval", 1e10),
    ],
)
def test_values_that_would_overflow_later_are_refused_now(field: str, value: Any) -> None:
    extra = {"default_rate_limit": 1.0} if field == "default_rate_limit_burst" else {}
    with pytest.raises(ConfigurationError) as info:
        ResilienceConfiguration(**extra, **{field: value})
    assert info.value.fields == (field,)
