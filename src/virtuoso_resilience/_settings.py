"""Settings from arguments, the environment and a TOML file, over a preset.

:func:`load_settings` reads, through ``pydantic-settings``'s own sources, the
seed's variables (``BYBIT_API_KEY``, ``BYBIT_API_SECRET``,
``MEMCACHED_HOST``/``MEMCACHED_PORT``, ``REDIS_HOST``/``REDIS_PORT``,
``DISCORD_WEBHOOK_URL``) and, with the ``VIRTUOSO_`` prefix, every other field
(``VIRTUOSO_PRESET``, ``VIRTUOSO_DEFAULT_FAILURE_THRESHOLD``, ...).

Precedence, highest first: keyword arguments > environment > TOML file >
preset (``production`` unless ``preset`` says otherwise). Every value is then
validated by the configuration models; all problems from all sources are
reported in one :class:`~virtuoso_resilience.errors.ConfigurationError`, each
naming where the value came from. Secrets are
:class:`pydantic.SecretStr`: masked in reprs, dumps, logs and errors.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal, get_args

from pydantic import (
    AfterValidator,
    AliasChoices,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    create_model,
)
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict
from pydantic_settings import TomlConfigSettingsSource as _TomlSource

from ._model import ConfigModel
from .config import PresetName, ResilienceConfiguration
from .errors import ConfigurationError, FieldError

__all__ = [
    "ENV_PREFIX",
    "SEED_VARIABLES",
    "ResilienceSettings",
    "ServiceSettings",
    "Source",
    "load_configuration",
    "load_settings",
]

ENV_PREFIX: Final = "VIRTUOSO_"
"""The prefix of every environment variable except the seed's own names."""

SEED_VARIABLES: Final[Mapping[str, str]] = {
    "bybit_api_key": "BYBIT_API_KEY",
    "bybit_api_secret": "BYBIT_API_SECRET",
    "memcached_host": "MEMCACHED_HOST",
    "memcached_port": "MEMCACHED_PORT",
    "redis_host": "REDIS_HOST",
    "redis_port": "REDIS_PORT",
    "discord_webhook_url": "DISCORD_WEBHOOK_URL",
}
"""Field name -> environment variable, exactly as the seed names them (no prefix)."""

_log = logging.getLogger("virtuoso_resilience.settings")

Source = Literal["argument", "environment", "file", "preset"]
"""Where a value came from."""

Port = Annotated[int, Field(ge=1, le=65535)]
"""A TCP port."""
_MAX_HOST: Final = 253
_NONE_STRINGS = frozenset({"", "none", "null"})


def _check_host(value: str) -> str:
    if not value or len(value) > _MAX_HOST:
        raise ValueError(f"must be a host name of 1 to {_MAX_HOST} characters")
    if not value.isascii() or any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError("must be a host name or IP address (printable ASCII, no spaces)")
    return value


Host = Annotated[str, AfterValidator(_check_host)]
"""A host name or IP address: 1 to 253 printable ASCII characters, no spaces."""


class ServiceSettings(ConfigModel):
    """Where the services are and the credentials to reach them (the seed's variables).

    Secrets are :class:`pydantic.SecretStr`: ``repr``, ``model_dump`` and
    ``model_dump_json`` show ``**********``; read one with
    ``.get_secret_value()``.
    """

    bybit_api_key: SecretStr | None = None
    """Bybit API key (``BYBIT_API_KEY``); required by the ``prod`` deployment."""
    bybit_api_secret: SecretStr | None = None
    """Bybit API secret (``BYBIT_API_SECRET``); required by the ``prod`` deployment."""
    memcached_host: Host = "127.0.0.1"
    """Memcached host (``MEMCACHED_HOST``)."""
    memcached_port: Port = 11211
    """Memcached port (``MEMCACHED_PORT``)."""
    redis_host: Host = "127.0.0.1"
    """Redis host (``REDIS_HOST``)."""
    redis_port: Port = 6379
    """Redis port (``REDIS_PORT``)."""
    discord_webhook_url: SecretStr | None = None
    """Discord webhook for alerts (``DISCORD_WEBHOOK_URL``); a secret: it grants posting."""


@dataclasses.dataclass(frozen=True, slots=True)
class ResilienceSettings:
    """Everything :func:`load_settings` found: the resilience defaults and the services.

    ``sources`` maps each field to where its value came from (``"argument"``,
    ``"environment"``, ``"file"`` or ``"preset"``/default).
    """

    preset: PresetName
    resilience: ResilienceConfiguration
    services: ServiceSettings
    sources: Mapping[str, Source] = dataclasses.field(default_factory=dict)

    def describe(self) -> list[str]:
        """One line per field, ``name = value  (source)``; secrets masked."""
        lines = [f"preset = {self.preset!r}  ({self.sources.get('preset', 'preset')})"]
        for model in (self.resilience, self.services):
            for name in type(model).model_fields:
                value = getattr(model, name)
                shown = "**********" if isinstance(value, SecretStr) else repr(value)
                origin = self.sources.get(name, "preset" if model is self.resilience else "default")
                lines.append(f"{name} = {shown}  ({origin})")
        return lines


def _cut(value: object) -> object:
    """A long text value cut for an error message (a 1 MB variable stays readable)."""
    if isinstance(value, str) and len(value) > 80:
        return value[:80] + "..."
    return value


def _env_name(field: str) -> str:
    return SEED_VARIABLES.get(field, ENV_PREFIX + field.upper())


class _SourceModel(BaseSettings):
    """The raw shape every source is read into (no validation: the models do it)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", populate_by_name=True, case_sensitive=False
    )


@functools.cache
def _raw_model() -> type[BaseSettings]:
    fields: dict[str, Any] = {"preset": (Any, None)}
    for name in ResilienceConfiguration.model_fields:
        fields[name] = (Any, None)
    for name, variable in SEED_VARIABLES.items():
        fields[name] = (Any, Field(None, validation_alias=AliasChoices(variable, name)))
    model: type[BaseSettings] = create_model("_RawSettings", __base__=_SourceModel, **fields)
    return model


def _all_fields() -> list[str]:
    return ["preset", *ResilienceConfiguration.model_fields, *ServiceSettings.model_fields]


def _by_field(data: Mapping[str, Any]) -> dict[str, Any]:
    """Source keys (aliases such as ``BYBIT_API_KEY``) -> field names."""
    aliases = {v.lower(): k for k, v in SEED_VARIABLES.items()}
    return {aliases.get(str(k).lower(), str(k)): v for k, v in data.items()}


@functools.cache
def _lax(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)


def _convert(model: type[ConfigModel], data: Mapping[str, Any]) -> dict[str, Any]:
    """Text from the environment to Python values; strict validation follows.

    ``"5"`` -> 5, ``"off"`` -> False, ``""``/``"none"`` -> None where a field
    is optional. Non-ASCII digits (``"１０"``, ``"²"``), ``"nan"``, ``"inf"``
    are not numbers here: the strict validation names them.
    """
    out: dict[str, Any] = {}
    for name, raw in data.items():
        info = model.model_fields[name]
        annotation: Any = info.annotation
        value: Any = raw
        if isinstance(raw, str):
            optional = type(None) in get_args(annotation)
            if optional and raw.strip().lower() in _NONE_STRINGS:
                value = None
            elif not (SecretStr in get_args(annotation) or annotation is str):
                try:
                    value = _lax(annotation).validate_python(raw, strict=False)
                except ValidationError:
                    value = raw  # the strict validation words the error
        out[name] = value
    return out


def _read_toml(path: Path) -> tuple[dict[str, Any], list[FieldError]]:
    try:
        data = _TomlSource(_raw_model(), toml_file=path)()
    except tomllib.TOMLDecodeError as exc:
        return {}, [FieldError("settings file", str(path), "...", f"is not valid TOML: {exc}")]
    except OSError as exc:
        return {}, [FieldError("settings file", str(path), "...", f"cannot be read: {exc}")]
    known = set(_all_fields()) | {v.lower() for v in SEED_VARIABLES.values()}
    errors = [
        FieldError(
            "settings file",
            str(key),
            "***"
            if any(h in str(key).lower() for h in ("secret", "key", "webhook", "token"))
            else "...",
            f"unknown key in {path}; allowed keys: " + ", ".join(_all_fields()),
        )
        for key in data
        if str(key).lower() not in known
    ]
    return {k: v for k, v in _by_field(data).items() if k in set(_all_fields())}, errors


def load_settings(
    toml_file: str | os.PathLike[str] | None = None,
    *,
    preset: PresetName | None = None,
    **overrides: Any,
) -> ResilienceSettings:
    """Load the settings: ``overrides`` > environment > ``toml_file`` > preset.

    ``toml_file`` (default: ``$VIRTUOSO_CONFIG_FILE`` if set, else none) is a
    flat TOML table of field names (``default_failure_threshold = 8``,
    ``redis_port = 6380``, ``preset = "development"``). The preset is chosen
    by ``preset``, else the ``preset`` value found in the sources, else
    ``"production"``; its values are the base every source overrides.

    Raises one :class:`~virtuoso_resilience.errors.ConfigurationError` listing
    every bad value of every source, each naming the field, where it came from
    (``VIRTUOSO_DEFAULT_FAILURE_THRESHOLD`` from the environment), the value
    (secrets masked, long values cut) and what is allowed.
    """
    errors: list[FieldError] = []
    unknown = sorted(set(overrides) - set(_all_fields()))
    for key in unknown:
        errors.append(
            FieldError(
                "load_settings",
                key,
                "...",
                "unknown argument; allowed: " + ", ".join(_all_fields()),
            )
        )
    layers: list[tuple[Source, dict[str, Any]]] = []
    path = toml_file if toml_file is not None else os.environ.get(ENV_PREFIX + "CONFIG_FILE")
    if path:
        file = Path(path)
        if not file.is_file():
            errors.append(FieldError("settings file", str(file), "...", "does not exist"))
        else:
            data, problems = _read_toml(file)
            errors.extend(problems)
            layers.append(("file", data))
    env = _by_field(EnvSettingsSource(_raw_model())())
    layers.append(("environment", {k: v for k, v in env.items() if k in set(_all_fields())}))
    layers.append(("argument", {k: v for k, v in overrides.items() if k not in unknown}))
    if preset is not None:
        layers.append(("argument", {"preset": preset}))

    merged: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    for source, data in layers:
        for key, value in data.items():
            merged[key] = value
            sources[key] = source

    chosen = merged.pop("preset", "production")
    if isinstance(chosen, str):
        chosen = chosen.strip().lower()
    try:
        base = ResilienceConfiguration.preset(chosen)
    except ConfigurationError:
        errors.append(
            _where(
                FieldError(
                    "settings", "preset", _cut(chosen), "must be 'production' or 'development'"
                ),
                sources,
            )
        )
        base = ResilienceConfiguration()
        chosen = "production"

    resilience_data = {k: v for k, v in merged.items() if k in ResilienceConfiguration.model_fields}
    service_data = {k: v for k, v in merged.items() if k in ServiceSettings.model_fields}
    resilience: ResilienceConfiguration | None = None
    services: ServiceSettings | None = None
    try:
        resilience = ResilienceConfiguration(
            **(base.model_dump() | _convert(ResilienceConfiguration, resilience_data))
        )
    except ConfigurationError as exc:
        errors.extend(_where(e, sources) for e in exc.errors)
    try:
        services = ServiceSettings(**_convert(ServiceSettings, service_data))
    except ConfigurationError as exc:
        errors.extend(_where(e, sources) for e in exc.errors)
    if errors or resilience is None or services is None:
        failure = ConfigurationError(errors)
        _log.debug("invalid settings: %s", failure)
        raise failure
    settings = ResilienceSettings(
        preset=chosen, resilience=resilience, services=services, sources=sources
    )
    if _log.isEnabledFor(logging.DEBUG):
        _log.debug("settings loaded:\n  %s", "\n  ".join(settings.describe()))
    return settings


def load_configuration(
    toml_file: str | os.PathLike[str] | None = None,
    *,
    preset: PresetName | None = None,
    **overrides: Any,
) -> ResilienceConfiguration:
    """The :class:`ResilienceConfiguration` part of :func:`load_settings` (same precedence).

    The service fields (Bybit keys, cache hosts, webhook) are validated too;
    use :func:`load_settings` to get them.
    """
    return load_settings(toml_file, preset=preset, **overrides).resilience


def _where(error: FieldError, sources: Mapping[str, Source]) -> FieldError:
    """Add where the value came from to an error (the env variable's name)."""
    names = [n.strip() for n in error.field.split(",")]
    origin = [
        (
            _env_name(n) + " from the environment"
            if sources.get(n) == "environment"
            else f"{n} from the {sources[n]}"
        )
        if n in sources
        else f"{n} from the preset"
        for n in names
    ]
    return dataclasses.replace(error, allowed=f"{error.allowed} [{'; '.join(origin)}]")
