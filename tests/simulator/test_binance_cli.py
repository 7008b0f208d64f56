"""``virtuoso-resilience simulate --dialect binance``: parsing, banner, a real ccxt client."""

from __future__ import annotations

import argparse
import asyncio

import ccxt.async_support as ccxt
import pytest

from virtuoso_resilience.simulator import Simulator, cli


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="virtuoso-resilience")
    subparsers = root.add_subparsers(dest="command", required=True)
    cli.add_parser(subparsers)
    return root


def test_dialect_defaults_to_bybit_and_accepts_binance() -> None:
    assert parser().parse_args(["simulate"]).dialect == "bybit"
    assert parser().parse_args(["simulate", "--dialect", "binance"]).dialect == "binance"


def test_an_unknown_dialect_exits_2_naming_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parser().parse_args(["simulate", "--dialect", "kraken"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "--dialect" in err and "'kraken'" in err and "binance" in err


def test_a_namespace_without_dialect_still_serves_bybit() -> None:
    args = parser().parse_args(["simulate", "--port", "0"])
    del args.dialect  # e.g. a caller that builds its own namespace
    assert cli._config(args).dialect == "bybit"


async def test_serve_binance_for_ccxt(capsys: pytest.CaptureFixture[str]) -> None:
    args = parser().parse_args(
        [
            "simulate",
            "--port",
            "0",
            "--seed",
            "9",
            "--dialect",
            "binance",
            "--faults",
            "http@/api/v3/depth=503",
        ]
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    seen: list[Simulator] = []

    def started(simulator: Simulator) -> None:
        seen.append(simulator)
        ready.set()

    task = asyncio.create_task(cli.serve(args, stop=stop, started=started))
    await asyncio.wait_for(ready.wait(), timeout=10)
    sim = seen[0]
    assert sim.dialect == "binance"
    exchange = ccxt.binance({**sim.ccxt_config(), "enableRateLimit": False})
    exchange.timeout_on_exit = 0
    try:
        assert (await exchange.fetch_ticker("BTC/USDT"))["symbol"] == "BTC/USDT"
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await exchange.fetch_order_book("BTC/USDT")
    finally:
        await exchange.close()
    stop.set()
    assert await asyncio.wait_for(task, timeout=10) == 0
    out = capsys.readouterr().out
    assert "dialect: binance (ccxt.binance)" in out
    assert "faults: http@/api/v3/depth=503" in out
