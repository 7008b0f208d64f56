"""The resilient exchange adapter: ccxt calls protected, orders never duplicated.

See ``docs/exchange.md``.
"""

from ._adapter import ResilientExchange, create_resilient_exchange
from ._codec import ClientOrderIdCodec, codec_for
from ._config import (
    ExchangeResilienceConfig,
    GroupConfig,
    MethodGroup,
    create_binance_resilient_config,
    create_bybit_resilient_config,
    create_okx_resilient_config,
)
from ._errors import (
    ExchangeBannedError,
    InvalidClientOrderIdError,
    MaintenanceError,
    OrderStatusUnknownError,
)
from ._limits import AccountLimiter
from ._orders import OrderState, PendingOrder
from ._stale import StaleDict, StaleList

__all__ = [
    "AccountLimiter",
    "ClientOrderIdCodec",
    "ExchangeBannedError",
    "ExchangeResilienceConfig",
    "GroupConfig",
    "InvalidClientOrderIdError",
    "MaintenanceError",
    "MethodGroup",
    "OrderState",
    "OrderStatusUnknownError",
    "PendingOrder",
    "ResilientExchange",
    "StaleDict",
    "StaleList",
    "codec_for",
    "create_binance_resilient_config",
    "create_bybit_resilient_config",
    "create_okx_resilient_config",
    "create_resilient_exchange",
]
