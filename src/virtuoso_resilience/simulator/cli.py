"""The ``simulate`` subcommand: run the exchange simulator until Ctrl-C / SIGTERM.

Wire it into a parent parser with :func:`add_parser`; the parsed namespace
carries ``handler`` (:func:`run`), which returns the exit code::

    virtuoso-resilience simulate --port 8090 --faults "latency=200ms,error_rate=0.1,rate_limit=10/s"

Standalone: ``python -m virtuoso_resilience.simulator.cli --port 8090``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence

from .._signals import on_stop_signals
from ..errors import ConfigurationError
from ._auth import key_fingerprint
from ._config import DEFAULT_API_KEY, DEFAULT_API_SECRET, MAX_SEED, SimulatorConfig
from ._faults import ALLOWED_KEYS, FaultSpecError, parse_faults
from ._server import Simulator

__all__ = ["add_arguments", "add_parser", "main", "run", "serve"]

_DESCRIPTION = (
    "Run a fault-injecting Bybit v5 REST simulator that ccxt's bybit client can talk to. "
    "Point ccxt at it by setting every urls['api'] entry to http://HOST:PORT "
    "(see docs/simulator.md). Stop it with Ctrl-C or SIGTERM."
)
_FAULTS_HELP = (
    "faults to inject, comma-separated key[@endpoint]=value[#count][~window] items, e.g. "
    "'latency=200ms,error_rate=0.1,rate_limit=10/s'; keys: " + ", ".join(ALLOWED_KEYS)
)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be an integer, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 0..65535, got {value}")
    return value


def _seed(text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 20 and int(text) <= MAX_SEED):
        raise argparse.ArgumentTypeError(f"seed must be an integer in 0..{MAX_SEED}, got {text!r}")
    return int(text)


def _fault_spec(text: str) -> str:
    try:
        parse_faults(text)
    except FaultSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``simulate`` options to ``parser``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=_port, default=8090, help="TCP port, 0 for a free one (default: 8090)"
    )
    parser.add_argument("--faults", type=_fault_spec, default="", help=_FAULTS_HELP)
    parser.add_argument(
        "--seed", type=_seed, default=None, help="seed for faults and prices (default: random)"
    )
    parser.add_argument(
        "--api-key",
        default=DEFAULT_API_KEY,
        help=f"API key accepted by private endpoints (default: {DEFAULT_API_KEY}, testing only)",
    )
    parser.add_argument(
        "--api-secret",
        default=DEFAULT_API_SECRET,
        help="its secret (default: the public test secret documented in docs/simulator.md)",
    )
    parser.add_argument(
        "--dialect",
        choices=("bybit", "binance"),
        default="bybit",
        help="exchange API to serve: Bybit v5 or Binance spot REST v3 (default: bybit)",
    )
    parser.add_argument(
        "--no-rate-limits",
        action="store_true",
        help="do not enforce Bybit's per-IP and per-key budgets (fault budgets still apply)",
    )


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register the ``simulate`` subcommand; its namespace gets ``handler=run``."""
    parser = subparsers.add_parser(
        "simulate",
        help="run the fault-injecting Bybit exchange simulator",
        description=_DESCRIPTION,
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)
    return parser


def _config(args: argparse.Namespace) -> SimulatorConfig:
    return SimulatorConfig(
        host=args.host,
        port=args.port,
        seed=args.seed,
        faults=args.faults,
        api_key=args.api_key,
        api_secret=args.api_secret,
        rate_limits=not args.no_rate_limits,
        dialect=getattr(args, "dialect", "bybit"),
    )


async def serve(
    args: argparse.Namespace,
    *,
    stop: asyncio.Event | None = None,
    started: Callable[[Simulator], None] | None = None,
) -> int:
    """Run the simulator until ``stop`` is set (or SIGINT/SIGTERM arrives); return the exit code."""
    try:
        config = _config(args)
    except ConfigurationError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    stop = stop if stop is not None else asyncio.Event()
    with on_stop_signals(stop.set):
        async with Simulator(config) as sim:
            print(f"simulator listening on {sim.base_url} (seed {sim.seed})", flush=True)
            if sim.api_key == DEFAULT_API_KEY and sim.api_secret == DEFAULT_API_SECRET:
                credentials = f"the public test pair {DEFAULT_API_KEY} / {DEFAULT_API_SECRET}"
            else:
                credentials = f"--api-key / --api-secret ({key_fingerprint(sim.api_key)})"
            print(f"  credentials: {credentials}", flush=True)
            if config.dialect != "bybit":
                print(f"  dialect: {config.dialect} (ccxt.{config.dialect})", flush=True)
            if config.faults:
                print(f"  faults: {config.faults}", flush=True)
            print(f"  control API: {sim.base_url}/__sim__/stats, /__sim__/faults", flush=True)
            if started is not None:
                started(sim)
            await stop.wait()
    print("simulator stopped", flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    """Handler of ``simulate``: serve until interrupted; return the exit code."""
    try:
        return asyncio.run(serve(args))
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"simulate: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point (``python -m virtuoso_resilience.simulator.cli``)."""
    parser = argparse.ArgumentParser(prog="virtuoso-resilience-simulate", description=_DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
