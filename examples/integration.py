"""The seed's integration example, runnable offline.

The exchange is the built-in Bybit simulator; memcached and Redis come from
``MEMCACHED_HOST``/``MEMCACHED_PORT`` and ``REDIS_HOST``/``REDIS_PORT`` (an
unreachable one is served from memory, reported as degraded). Run:

    python examples/integration.py
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from virtuoso_resilience import (
    ResilientVirtuosoIntegration,
    create_bybit_resilient_config,
    create_memcached_resilient_config,
    create_redis_resilient_config,
)
from virtuoso_resilience.simulator import Simulator


async def main() -> dict[str, Any]:
    container: dict[type, object] = {}  # your DI container (svcs, dependency_injector, ...)
    async with Simulator(seed=1) as simulator:
        # Integration with existing system
        integration = ResilientVirtuosoIntegration(container)
        await integration.initialize()
        try:
            # Create resilient components
            config = create_bybit_resilient_config()
            cache_config = {
                "memcached": create_memcached_resilient_config(),
                "redis": create_redis_resilient_config(),
            }
            resilient_bybit = await integration.create_resilient_bybit_exchange(
                config, ccxt_options={**simulator.ccxt_config(), "enableRateLimit": False}
            )
            resilient_caches = await integration.create_resilient_cache_system(cache_config)

            ticker = await resilient_bybit.fetch_ticker("BTC/USDT")
            for cache in resilient_caches.values():
                await cache.set("ticker:BTC/USDT", ticker["last"], ttl=30)
                assert await cache.get("ticker:BTC/USDT") == ticker["last"]

            # Monitor system health
            health_status = await integration.health_check_all()
            metrics = integration.get_comprehensive_metrics()
        finally:
            await integration.shutdown()
    summary = {
        "last": ticker["last"],
        "overall_status": health_status["overall_status"],
        "checks": {name: c["status"] for name, c in health_status["checks"].items()},
        "caches": {name: m.get("backend") for name, m in metrics["caches"].items()},
        "exchanges": len(metrics["exchanges"]),
    }
    print(json.dumps(summary, indent=2, sort_keys=True))
    return summary


if __name__ == "__main__":
    asyncio.run(main())
