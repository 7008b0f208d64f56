"""One table per exchange's codes (Bybit, Binance, OKX) and user overrides."""

from __future__ import annotations

import json
from typing import Any

import ccxt
import pytest
from classify_helpers import AMB, BZ, MT, PM, RL, K, T

from virtuoso_resilience.classify import (
    BUILTIN_OVERRIDES,
    BYBIT_OVERRIDES,
    DEFAULT_CLASSIFIER,
    Classifier,
    CodeRule,
    Outcome,
    OutcomeKind,
    Signal,
    classify,
)
from virtuoso_resilience.errors import ConfigurationError


def _bybit(cls: type[ccxt.BaseError], code: int, msg: str = "System error") -> ccxt.BaseError:
    # The exact shape bybit.handle_errors builds: self.id + ' ' + body
    body = json.dumps(
        {"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": 1},
        separators=(",", ":"),
    )
    return cls("bybit " + body)


def _binance(cls: type[ccxt.BaseError], code: int, msg: str) -> ccxt.BaseError:
    return cls("binance " + json.dumps({"code": code, "msg": msg}, separators=(",", ":")))


def _okx(cls: type[ccxt.BaseError], s_code: str, msg: str = "") -> ccxt.BaseError:
    body = {"code": "1", "data": [{"sCode": s_code, "sMsg": msg, "clOrdId": "a1"}], "msg": ""}
    return cls("okx " + json.dumps(body, separators=(",", ":")))


def test_builtin_tables_cover_the_required_codes() -> None:
    required = {10016: T, 5004: T, 10006: RL, 10018: RL, 10002: T, 10000: T}
    for code, kind in required.items():
        assert BYBIT_OVERRIDES[code] is kind
    assert DEFAULT_CLASSIFIER.overrides["bybit"]["10016"] is T
    assert set(BUILTIN_OVERRIDES) == {"bybit", "binance", "okx"}
    assert DEFAULT_CLASSIFIER.overrides["binance"]["-1021"] is T
    assert DEFAULT_CLASSIFIER.overrides["okx"]["51016"] is BZ


@pytest.mark.parametrize(
    ("cls", "code", "read", "write", "signal"),
    [
        (ccxt.ExchangeError, 10016, T, AMB, None),  # system error: a write may have happened
        (ccxt.RequestTimeout, 10016, T, AMB, None),  # 'Request timeout' is broadly matched
        (ccxt.ExchangeError, 5004, T, AMB, None),
        (ccxt.ExchangeError, 10000, T, AMB, None),
        (ccxt.InvalidNonce, 10002, T, T, Signal.CLOCK_SKEW),  # refused before acting
        (ccxt.BadRequest, 10002, T, T, Signal.CLOCK_SKEW),  # whatever class ccxt picks
        (ccxt.RateLimitExceeded, 10006, RL, RL, Signal.RATE_LIMIT),
        (ccxt.RateLimitExceeded, 10018, RL, RL, Signal.RATE_LIMIT),
        (ccxt.InvalidOrder, 170146, T, AMB, None),  # order creation timeout
        (ccxt.InvalidOrder, 110072, BZ, BZ, Signal.DUPLICATE_CLIENT_ORDER_ID),
        (ccxt.ExchangeError, 99999, PM, PM, None),  # not in the table: the class decides
        (ccxt.BadRequest, 10001, BZ, BZ, None),
    ],
)
def test_bybit_codes(
    cls: type[ccxt.BaseError],
    code: int,
    read: OutcomeKind,
    write: OutcomeKind,
    signal: Signal | None,
) -> None:
    error = _bybit(cls, code)
    outcome = classify(error)
    assert (outcome.kind, outcome.signal, outcome.code) == (read, signal, str(code))
    assert classify(error, write=True).kind is write
    if code in BYBIT_OVERRIDES:
        assert outcome.reason.startswith(f"bybit retCode {code}")


def test_bybit_duplicate_order_codes_say_so() -> None:
    for code in (110072, 12141, 170141, 110030, 140030):
        outcome = classify(_bybit(ccxt.InvalidOrder, code), write=True)
        assert outcome == Outcome(
            BZ,
            None,
            f"bybit retCode {code}: duplicate order id",
            code=str(code),
            signal=Signal.DUPLICATE_CLIENT_ORDER_ID,
        )


@pytest.mark.parametrize(
    ("cls", "code", "msg", "read", "write", "signal"),
    [
        (ccxt.InvalidNonce, -1021, "Timestamp for this request is outside of the recvWindow.",
         T, T, Signal.CLOCK_SKEW),
        (ccxt.BadRequest, -1021, "Timestamp for this request is outside of the recvWindow.",
         T, T, Signal.CLOCK_SKEW),
        (ccxt.RateLimitExceeded, -1003, "Too much request weight used; current limit is 1200.",
         RL, RL, Signal.RATE_LIMIT),
        (ccxt.RateLimitExceeded, -1015, "Too many new orders.",
         RL, RL, Signal.RATE_LIMIT),
        (ccxt.InvalidOrder, -2010, "Duplicate order sent.", BZ, BZ,
         Signal.DUPLICATE_CLIENT_ORDER_ID),
        (ccxt.InvalidOrder, -2010, "Account has insufficient balance.", BZ, BZ, None),
        (ccxt.OrderNotFound, -2013, "Order does not exist.", BZ, BZ, Signal.ORDER_NOT_FOUND),
        (ccxt.OrderNotFound, -2011, "Unknown order sent.", BZ, BZ, Signal.ORDER_NOT_FOUND),
        (ccxt.RequestTimeout, -1007, "Timeout waiting for response from backend server.",
         T, AMB, None),
        (ccxt.OperationFailed, -1008, "Server is currently overloaded.", T, T, None),
    ],
)  # fmt: skip
def test_binance_codes(
    cls: type[ccxt.BaseError],
    code: int,
    msg: str,
    read: OutcomeKind,
    write: OutcomeKind,
    signal: Signal | None,
) -> None:
    error = _binance(cls, code, msg)
    outcome = classify(error)
    assert (outcome.kind, outcome.signal, outcome.code) == (read, signal, str(code))
    assert classify(error, write=True).kind is write


def test_binance_ban_waits_until_the_ban_ends() -> None:
    now = 1_700_000_000.0
    until_ms = int((now + 300) * 1000)
    error = ccxt.DDoSProtection(
        f'binance 418 I\'m a teapot {{"code":-1003,"msg":"Way too much request weight used; '
        f'IP banned until {until_ms}. Please use WebSocket Streams for live updates."}}'
    )
    outcome = classify(error, now=now)
    assert outcome == Outcome(
        RL, 300.0, "binance code -1003: ip banned", 418, "-1003", Signal.IP_BAN
    )
    # The server's Retry-After, when longer, wins; a ban is never shortened.
    assert classify(error, now=now, headers={"Retry-After": "900"}).retry_after == 900.0
    assert classify(error, now=now, headers={"Retry-After": "5"}).retry_after == 300.0


@pytest.mark.parametrize(
    ("error", "read", "write", "signal"),
    [
        (_okx(ccxt.InvalidOrder, "51016", "Duplicated clOrdId"), BZ, BZ,
         Signal.DUPLICATE_CLIENT_ORDER_ID),
        (_okx(ccxt.RateLimitExceeded, "50011", "Too Many Requests"), RL, RL, Signal.RATE_LIMIT),
        (_okx(ccxt.ExchangeError, "50061", "order rate limit"), RL, RL, Signal.RATE_LIMIT),
        (_okx(ccxt.OnMaintenance, "50001", "upgrading"), MT, MT, Signal.MAINTENANCE),
        (_okx(ccxt.InvalidNonce, "50102", "Timestamp request expired"), T, T, Signal.CLOCK_SKEW),
        (_okx(ccxt.RequestTimeout, "50004", "Endpoint request timeout"), T, AMB, None),
        (_okx(ccxt.OrderNotFound, "51603", "Order does not exist"), BZ, BZ,
         Signal.ORDER_NOT_FOUND),
        (_okx(ccxt.CancelPending, "51410", "already cancelling"), T, T, Signal.CANCEL_PENDING),
    ],
)  # fmt: skip
def test_okx_codes_read_scode_first(
    error: ccxt.BaseError, read: OutcomeKind, write: OutcomeKind, signal: Signal | None
) -> None:
    outcome = classify(error)
    assert (outcome.kind, outcome.signal) == (read, signal)
    assert outcome.reason.startswith("okx sCode ")
    assert classify(error, write=True).kind is write


def test_okx_batch_answer_skips_successful_entries() -> None:
    body = {
        "code": "1",
        "data": [{"sCode": "0", "sMsg": ""}, {"sCode": "51016", "sMsg": "Duplicated clOrdId"}],
        "msg": "",
    }
    outcome = classify(ccxt.InvalidOrder("okx " + json.dumps(body)))
    assert (outcome.code, outcome.signal) == ("51016", Signal.DUPLICATE_CLIENT_ORDER_ID)


def test_legacy_ret_code_and_spaced_json_are_parsed() -> None:
    error = ccxt.ExchangeError('bybit {"ret_code": 10016, "ret_msg": "System error"}')
    assert classify(error) == Outcome(T, None, "bybit retCode 10016", code="10016")
    quoted = ccxt.ExchangeError('bybit {"retCode":"10006","retMsg":"Too many visits"}')
    assert classify(quoted).signal is Signal.RATE_LIMIT


def test_an_unknown_code_is_still_reported() -> None:
    outcome = classify(_bybit(ccxt.ExchangeError, 424242))
    assert (outcome.kind, outcome.code, outcome.reason) == (PM, "424242", "ExchangeError")


def test_non_ascii_digits_are_not_codes() -> None:
    for fake in ("١٠٠٠٦", "①⓪⓪⓪⑥", "10006²"):
        error = ccxt.RateLimitExceeded('bybit {"retCode":"' + fake + '"}')
        outcome = classify(error)
        assert outcome.code != "10006"
        assert outcome.reason == "RateLimitExceeded"


def test_tables_need_the_exchange() -> None:
    error = _bybit(ccxt.ExchangeError, 10016)
    assert Classifier().classify(error).kind is PM
    other = ccxt.ExchangeError('kraken {"retCode":10016}')
    assert classify(other).kind is PM
    assert classify(other, exchange_id="bybit").kind is T  # an explicit id wins
    assert classify(error, exchange_id="okx").kind is PM
    assert classify(ccxt.ExchangeError('{"retCode":10016}'), exchange_id="Bybit").kind is T


def test_with_overrides_adds_codes_and_is_immutable() -> None:
    kraken = DEFAULT_CLASSIFIER.with_overrides(
        "Kraken", {"EAPI:Rate limit exceeded": K.RATE_LIMITED, 50: CodeRule(K.MAINTENANCE)}
    )
    assert kraken is not DEFAULT_CLASSIFIER
    assert "kraken" not in DEFAULT_CLASSIFIER.overrides
    assert set(kraken.overrides["kraken"]) == {"EAPI:Rate limit exceeded", "50"}
    assert kraken.overrides["bybit"] == DEFAULT_CLASSIFIER.overrides["bybit"]
    limited = ccxt.ExchangeError('kraken {"code":"EAPI:Rate limit exceeded"}')
    assert kraken.classify(limited).kind is RL
    assert DEFAULT_CLASSIFIER.classify(limited).kind is PM
    assert kraken.config is DEFAULT_CLASSIFIER.config

    # Merging: new codes replace old ones for that exchange, others are kept.
    changed = DEFAULT_CLASSIFIER.with_overrides("bybit", {10016: K.PERMANENT})
    assert changed.classify(_bybit(ccxt.ExchangeError, 10016)).kind is PM
    assert changed.classify(_bybit(ccxt.RateLimitExceeded, 10006)).kind is RL
    assert DEFAULT_CLASSIFIER.classify(_bybit(ccxt.ExchangeError, 10016)).kind is T


def test_override_rules_and_write() -> None:
    clf = Classifier(
        {
            "kraken": {
                "EAPI:Busy": K.AMBIGUOUS,
                "EGeneral:Temporary": K.TRANSIENT,
                "EOrder:Dup": CodeRule(K.BUSINESS, Signal.DUPLICATE_CLIENT_ORDER_ID, "dup"),
                "EOrder:Two": [
                    CodeRule(K.BUSINESS, Signal.ORDER_NOT_FOUND, text="Unknown ORDER"),
                    CodeRule(K.PERMANENT),
                ],
            }
        }
    )

    def err(code: str, cls: type[ccxt.BaseError] = ccxt.ExchangeError, msg: str = "") -> Any:
        return cls('kraken {"code":"' + code + '","msg":"' + msg + '"}')

    assert clf.classify(err("EAPI:Busy")).kind is T
    assert clf.classify(err("EAPI:Busy"), write=True).kind is AMB
    assert clf.classify(err("EAPI:Busy", ccxt.InvalidNonce), write=True).kind is AMB
    assert clf.classify(err("EGeneral:Temporary"), write=True).kind is AMB
    assert clf.classify(err("EGeneral:Temporary", ccxt.InvalidNonce), write=True).kind is T
    assert clf.classify(err("EGeneral:Temporary", ccxt.OnMaintenance), write=True).kind is T
    dup = clf.classify(err("EOrder:Dup", ccxt.RequestTimeout), write=True)
    assert (dup.kind, dup.signal, dup.reason) == (
        BZ,
        Signal.DUPLICATE_CLIENT_ORDER_ID,
        "kraken code EOrder:Dup: dup",
    )
    assert clf.classify(err("EOrder:Two", msg="unknown order")).signal is Signal.ORDER_NOT_FOUND
    assert clf.classify(err("EOrder:Two", msg="other")).kind is PM


@pytest.mark.parametrize(
    "overrides",
    [
        {"bybit": {10016: "transient"}},
        {"bybit": {10016: K.SUCCESS}},
        {"bybit": {10016: []}},
        {"bybit": {10016: ["x"]}},
        {"bybit": {True: K.TRANSIENT}},
        {"bybit": {"": K.TRANSIENT}},
        {"bybit": {"١٠": K.TRANSIENT}},
        {"bybit": {1.5: K.TRANSIENT}},
        {"bybit": {10**5000: K.TRANSIENT}},
        {"bybit": [1, 2]},
        {"": {1: K.TRANSIENT}},
        {3: {1: K.TRANSIENT}},
    ],
)
def test_bad_overrides_are_configuration_errors(overrides: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        Classifier(overrides)
    assert info.value.errors
    assert all(e.model == "Classifier" for e in info.value.errors)
    assert "overrides" in str(info.value)
    with pytest.raises(ConfigurationError):
        DEFAULT_CLASSIFIER.with_overrides("bybit", {10016: "transient"})  # type: ignore[dict-item]


def test_bad_overrides_are_all_listed() -> None:
    with pytest.raises(ConfigurationError) as info:
        Classifier({"bybit": {10016: "x", "": K.TRANSIENT}})  # type: ignore[dict-item]
    assert len(info.value.errors) == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "transient"}, "kind"),
        ({"kind": K.SUCCESS}, "kind"),
        ({"kind": K.TRANSIENT, "signal": "ip_ban"}, "signal"),
        ({"kind": K.TRANSIENT, "text": ""}, "text"),
        ({"kind": K.TRANSIENT, "text": 3}, "text"),
    ],
)
def test_bad_code_rules_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=f"CodeRule.{field}="):
        CodeRule(**kwargs)


def test_a_bad_config_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="config"):
        Classifier(config={"ban_pause": 1})  # type: ignore[arg-type]


def test_ban_pause_is_a_validated_setting() -> None:
    from virtuoso_resilience.classify import ClassifierConfig

    config = ClassifierConfig(ban_pause=600.0)
    clf = Classifier(BUILTIN_OVERRIDES, config=config)
    error = ccxt.DDoSProtection("binance 418 I'm a teapot {}")
    assert clf.classify(error).retry_after == 600.0
    config.ban_pause = 30.0  # read live
    assert clf.classify(error).retry_after == 30.0
    for bad in (float("nan"), float("inf"), -0.0, 0.0, True, "5", 1e10):
        with pytest.raises(ConfigurationError, match="ban_pause"):
            config.ban_pause = bad
        assert config.ban_pause == 30.0
    with pytest.raises(ConfigurationError, match="ban_pause"):
        ClassifierConfig(ban_pause=7200.0)  # longer than max_retry_after


def test_codes_never_carry_query_strings() -> None:
    error = ccxt.ExchangeError('kraken {"code":"apiKey=SECRET&signature=beef","msg":"x"}')
    outcome = DEFAULT_CLASSIFIER.with_overrides("kraken", {"1": K.TRANSIENT}).classify(error)
    assert outcome.code is None
    assert "SECRET" not in repr(outcome)


@pytest.mark.parametrize(
    ("message", "signal"),
    [
        ('binanceusdm {"code":-4116,"msg":"ClientOrderId is duplicated."}',
         Signal.DUPLICATE_CLIENT_ORDER_ID),
        ('binancecoinm {"code":-1021,"msg":"Timestamp outside recvWindow"}', Signal.CLOCK_SKEW),
        ('binanceus {"code":-2010,"msg":"Duplicate order sent."}',
         Signal.DUPLICATE_CLIENT_ORDER_ID),
        ('okxus {"code":"1","data":[{"sCode":"51016","sMsg":"dup"}]}',
         Signal.DUPLICATE_CLIENT_ORDER_ID),
        ('myokx {"code":"50011","msg":"Too Many Requests"}', Signal.RATE_LIMIT),
    ],
)  # fmt: skip
def test_ccxt_family_ids_share_their_parent_s_table(message: str, signal: Signal) -> None:
    assert classify(ccxt.ExchangeError(message)).signal is signal


def test_an_explicit_table_for_a_family_id_wins_over_the_alias() -> None:
    own = DEFAULT_CLASSIFIER.with_overrides("binanceusdm", {-4116: K.PERMANENT})
    error = ccxt.InvalidOrder('binanceusdm {"code":-4116,"msg":"ClientOrderId is duplicated."}')
    assert own.classify(error).kind is PM
    assert own.classify(ccxt.InvalidOrder('binance {"code":-4116}')).kind is BZ
