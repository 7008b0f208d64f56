"""The ``virtuoso-resilience`` command.

``virtuoso-resilience serve`` runs the main job on its built-in defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from ._signals import on_stop_signals
from .errors import ConfigurationError

__all__ = ["add_deploy_parser", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="virtuoso-resilience",
        description="Resilience layer for asyncio trading systems built on CCXT.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = sub.add_parser(
        "serve",
        help="run the market-data service with resilience policies (offline by default)",
    )
    serve.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    serve.add_argument(
        "--summary-interval",
        type=float,
        default=5.0,
        help="seconds between one-line summaries (default: 5)",
    )
    serve.add_argument(
        "--outage-every",
        type=float,
        default=30.0,
        help="seconds between simulated ticker outages; 0 disables them (default: 30)",
    )
    serve.add_argument(
        "--outage-length",
        type=float,
        default=8.0,
        help="seconds each simulated outage lasts (default: 8)",
    )
    serve.add_argument(
        "--poll-interval",
        type=float,
        default=0.5,
        help="seconds between ticker polls (default: 0.5)",
    )
    serve.add_argument(
        "--seed", type=int, default=7, help="simulator seed, for replay (default: 7)"
    )
    serve.add_argument(
        "--monitoring-host",
        default="127.0.0.1",
        help="address the monitoring API binds (default: 127.0.0.1; anything else is explicit)",
    )
    serve.add_argument(
        "--monitoring-port",
        type=int,
        default=8001,
        help="port of the monitoring API; 0 picks a free one (default: 8001)",
    )
    serve.add_argument(
        "--no-monitoring",
        action="store_true",
        help="do not start the monitoring API (token for its write endpoints: "
        "VIRTUOSO_MONITORING_TOKEN)",
    )
    serve.set_defaults(handler=_serve)

    add_deploy_parser(sub)

    from .simulator.cli import add_parser as add_simulate_parser

    add_simulate_parser(sub)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from ._serve import ServeOptions, serve

    problems = [
        f"{flag} must be {rule} seconds, got {value!r}"
        for flag, value, ok, rule in (
            ("--summary-interval", args.summary_interval, args.summary_interval > 0, "> 0"),
            ("--poll-interval", args.poll_interval, args.poll_interval > 0, "> 0"),
            ("--duration", args.duration, args.duration is None or args.duration > 0, "> 0"),
            ("--outage-every", args.outage_every, args.outage_every >= 0, ">= 0 (0: none)"),
            ("--outage-length", args.outage_length, args.outage_length > 0, "> 0"),
        )
        if not ok
    ]
    monitoring = None
    if not args.no_monitoring:
        try:
            monitoring = _monitoring_settings(args)
        except ConfigurationError as exc:
            problems.append(str(exc))
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    options = ServeOptions(
        monitoring=monitoring,
        duration=args.duration,
        summary_interval=args.summary_interval,
        poll_interval=args.poll_interval,
        outage_every=args.outage_every,
        outage_length=args.outage_length,
        seed=args.seed,
    )
    return _run_until_signalled(serve(options))


def add_deploy_parser(sub: Any) -> argparse.ArgumentParser:
    """The ``deploy`` sub-command (also ``scripts/deploy_resilience_patterns.py``)."""
    deploy: argparse.ArgumentParser = sub.add_parser(
        "deploy",
        help="validate prerequisites, start and verify the resilience layer step by step",
        description=(
            "Check prerequisites (Python, packages, required variables, reachability of the "
            "exchange, memcached, Redis and the webhook), then start each step and verify it; "
            "on a failure, roll back the completed steps in reverse order and exit 1."
        ),
    )
    deploy.add_argument(
        "--environment",
        choices=("dev", "prod"),
        required=True,
        help="dev: development preset, built-in simulator; prod: production preset, "
        "api.bybit.com, BYBIT_API_KEY and BYBIT_API_SECRET required",
    )
    deploy.add_argument(
        "--dry-run", action="store_true", help="run every check and print the plan; change nothing"
    )
    deploy.add_argument("--verbose", action="store_true", help="show settings and step details")
    deploy.add_argument(
        "--config",
        dest="config_file",
        default=None,
        help="TOML settings file (default: $VIRTUOSO_CONFIG_FILE)",
    )
    deploy.add_argument(
        "--timeout",
        type=float,
        default=2.0,
        help="seconds each reachability probe may take (default: 2)",
    )
    deploy.add_argument(
        "--run-for",
        type=float,
        default=None,
        help="seconds to keep running once deployed; 0 stops at once (default: until Ctrl-C)",
    )
    deploy.add_argument(
        "--exchange-faults",
        default="",
        help="dev only: faults for the built-in simulator, e.g. 'http@/v5/market/tickers=503'",
    )
    deploy.add_argument(
        "--api-host", default="127.0.0.1", help="monitoring API host (default: 127.0.0.1)"
    )
    deploy.add_argument(
        "--api-port", type=int, default=8001, help="monitoring API port (default: 8001)"
    )
    deploy.set_defaults(handler=_deploy)
    return deploy


def _deploy(args: argparse.Namespace) -> int:
    import math

    from ._deploy import DeployOptions, deploy

    problems = []
    if not (math.isfinite(args.timeout) and 0 < args.timeout <= 60):
        problems.append(f"--timeout must be > 0 and <= 60 seconds, got {args.timeout!r}")
    if args.run_for is not None and not (math.isfinite(args.run_for) and args.run_for >= 0):
        problems.append(f"--run-for must be >= 0 seconds, got {args.run_for!r}")
    if not 1 <= args.api_port <= 65535:
        problems.append(f"--api-port must be 1 to 65535, got {args.api_port!r}")
    if args.exchange_faults and args.environment != "dev":
        problems.append("--exchange-faults is for --environment dev (the built-in simulator)")
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    options = DeployOptions(
        environment=args.environment,
        dry_run=args.dry_run,
        verbose=args.verbose,
        timeout=args.timeout,
        run_for=args.run_for,
        config_file=args.config_file,
        exchange_faults=args.exchange_faults,
        api_host=args.api_host,
        api_port=args.api_port,
    )
    return _run_until_signalled(deploy(options), cancelled=130)  # 130: interrupted


def _monitoring_settings(args: argparse.Namespace) -> Any:
    from pydantic import SecretStr

    from .monitoring import MonitoringSettings

    raw = os.environ.get("VIRTUOSO_MONITORING_TOKEN") or None
    token = SecretStr(raw) if raw is not None else None
    return MonitoringSettings(host=args.monitoring_host, port=args.monitoring_port, token=token)


def _run_until_signalled(coro: Coroutine[Any, Any, int], cancelled: int = 0) -> int:
    """Run ``coro`` until it returns or SIGINT/SIGTERM arrives (exit code ``cancelled``)."""

    async def runner() -> int:
        task = asyncio.ensure_future(coro)
        with on_stop_signals(task.cancel):
            try:
                return await task
            except asyncio.CancelledError:
                return cancelled

    return asyncio.run(runner())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
