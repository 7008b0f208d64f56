"""ResilientVirtuosoIntegration against the simulator and real memcached / Redis."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import svcs
from _integration_servers import ROOT, Server

from virtuoso_resilience import (
    ResilienceManager,
    ResilienceRegistry,
    ResilientVirtuosoIntegration,
    create_bybit_resilient_config,
    create_redis_resilient_config,
    load_settings,
)
from virtuoso_resilience.simulator import Simulator


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(seed=5) as simulator:
        yield simulator


@pytest.fixture
def servers_env(
    clean_env: dict[str, str],
    redis_server: Server,
    memcached_server: Server,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    values = {
        "REDIS_HOST": redis_server.host,
        "REDIS_PORT": str(redis_server.port),
        "MEMCACHED_HOST": memcached_server.host,
        "MEMCACHED_PORT": str(memcached_server.port),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return clean_env | values


async def test_seed_integration_with_svcs(servers_env: dict[str, str], sim: Simulator) -> None:
    container = svcs.Registry()
    integration = ResilientVirtuosoIntegration(container)
    await integration.initialize()
    try:
        config = create_bybit_resilient_config()
        resilient_bybit = await integration.create_resilient_bybit_exchange(
            config, ccxt_options={**sim.ccxt_config(), "enableRateLimit": False}
        )
        resilient_caches = await integration.create_resilient_cache_system()
        assert sorted(resilient_caches) == ["memcached", "redis"]

        ticker = await resilient_bybit.fetch_ticker("BTC/USDT")
        assert ticker["symbol"] == "BTC/USDT"
        await resilient_caches["memcached"].set("k", {"last": ticker["last"]})
        assert await resilient_caches["memcached"].get("k") == {"last": ticker["last"]}
        read = await resilient_caches["redis"].lookup("missing")
        assert read.source == "miss"

        health_status = await integration.health_check_all()
        assert health_status["overall_status"] == "healthy"
        assert {"cache.memcached", "cache.redis"} <= set(health_status["checks"])
        metrics = integration.get_comprehensive_metrics()
        assert set(metrics) == {"resilience", "exchanges", "caches", "health"}
        assert sorted(metrics["caches"]) == ["memcached", "redis"]
        assert len(metrics["exchanges"]) == 1
        assert metrics["resilience"]["state"] == "running"

        async with svcs.Container(container) as services:
            manager = await services.aget(ResilienceManager)
            assert manager is integration.manager
            assert (await services.aget(ResilienceRegistry)) is manager.registry
    finally:
        await integration.shutdown()
        await container.aclose()
    assert integration.manager.state == "stopped"


async def test_a_dead_cache_is_degraded_not_an_error(
    clean_env: dict[str, str], sim: Simulator, redis_server: Server
) -> None:
    settings = load_settings(redis_host=redis_server.host, redis_port=redis_server.port)
    integration = ResilientVirtuosoIntegration(settings=settings)
    async with integration:
        caches = await integration.create_resilient_cache_system(
            {"redis": create_redis_resilient_config()}
        )
        await caches["redis"].set("a", 1)
        redis_server.process.kill()
        redis_server.process.wait()
        await caches["redis"].set("b", 2)  # served from memory
        assert await caches["redis"].get("b") == 2
        report = await integration.health_check_all()
        assert report["checks"]["cache.redis"]["status"] == "degraded"
        assert report["overall_status"] == "degraded"


async def test_facade_errors_and_repr(clean_env: dict[str, str]) -> None:
    integration = ResilientVirtuosoIntegration()
    with pytest.raises(RuntimeError, match="initialize"):
        integration.get_comprehensive_metrics()
    async with integration:
        with pytest.raises(ValueError, match="unknown cache backend"):
            await integration.create_resilient_cache_system(
                {"mongo": create_redis_resilient_config()}
            )
        assert "running" in repr(integration)
    assert "stopped" in repr(integration)


async def test_keys_come_from_the_settings_and_stay_hidden(
    clean_env: dict[str, str], sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BYBIT_API_KEY", sim.api_key)
    monkeypatch.setenv("BYBIT_API_SECRET", sim.api_secret)
    options: dict[str, Any] = {**sim.ccxt_config(credentials=False), "enableRateLimit": False}
    async with ResilientVirtuosoIntegration() as integration:
        exchange = await integration.create_resilient_bybit_exchange(ccxt_options=options)
        # A signed request, with the keys from the environment.
        orders = await exchange.fetch_open_orders("BTC/USDT")
        assert orders == []
        assert sim.request_count(api_key=sim.api_key) >= 1
        text = repr(integration.get_comprehensive_metrics()) + repr(integration.settings)
        assert sim.api_secret not in text


def test_examples_integration_runs(servers_env: dict[str, str]) -> None:
    env = servers_env | {
        "PYTHONPATH": str(ROOT / "src") + os.pathsep + servers_env.get("PYTHONPATH", "")
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "integration.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"overall_status": "healthy"' in result.stdout
    assert '"exchanges": 1' in result.stdout


async def test_examples_integration_main_in_process(servers_env: dict[str, str]) -> None:
    module = runpy.run_path(str(ROOT / "examples" / "integration.py"))
    summary = await module["main"]()
    assert summary["overall_status"] == "healthy"
    assert summary["checks"]["cache.memcached"] == "healthy"
