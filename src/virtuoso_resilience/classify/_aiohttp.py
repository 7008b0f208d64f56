"""aiohttp's client exceptions (``aiohttp.client_exceptions``).

``ClientResponseError`` and its subclasses are decided by HTTP status when
the status is an error (>= 400); these rules apply otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from ._outcome import OutcomeKind
from ._rules import LibraryTable, Rule

__all__ = ["TABLES"]

_TRANSIENT: Final = Rule(OutcomeKind.TRANSIENT)  # nothing was sent
_MAYBE_SENT: Final = Rule(OutcomeKind.TRANSIENT, ambiguous_on_write=True)
_PERMANENT: Final = Rule(OutcomeKind.PERMANENT)

_AIOHTTP: Final[LibraryTable] = (
    ("ClientError", _PERMANENT),
    ("ClientResponseError", _PERMANENT),
    ("ContentTypeError", _MAYBE_SENT),  # an unexpected body, like ccxt BadResponse
    ("WSServerHandshakeError", _TRANSIENT),
    ("ClientHttpProxyError", _TRANSIENT),
    ("TooManyRedirects", _PERMANENT),
    ("ClientConnectionError", _MAYBE_SENT),
    ("ClientConnectionResetError", _MAYBE_SENT),
    ("ClientOSError", _MAYBE_SENT),
    ("ClientConnectorError", _TRANSIENT),  # could not connect: nothing was sent
    ("ClientConnectorDNSError", _TRANSIENT),
    ("ClientProxyConnectionError", _TRANSIENT),
    ("UnixClientConnectorError", _TRANSIENT),
    ("ClientSSLError", _TRANSIENT),
    ("ClientConnectorSSLError", _TRANSIENT),
    ("ClientConnectorCertificateError", _PERMANENT),
    ("ServerConnectionError", _MAYBE_SENT),
    ("ServerDisconnectedError", _MAYBE_SENT),
    ("ServerTimeoutError", _MAYBE_SENT),
    ("ConnectionTimeoutError", _TRANSIENT),  # connect phase: nothing was sent
    ("SocketTimeoutError", _MAYBE_SENT),
    ("ServerFingerprintMismatch", _PERMANENT),
    ("ClientPayloadError", _MAYBE_SENT),
    ("UploadAbortedError", _MAYBE_SENT),
    ("InvalidURL", _PERMANENT),
    ("InvalidUrlClientError", _PERMANENT),
    ("InvalidUrlRedirectClientError", _PERMANENT),
    ("RedirectClientError", _PERMANENT),
    ("NonHttpUrlClientError", _PERMANENT),
    ("NonHttpUrlRedirectClientError", _PERMANENT),
)

TABLES: Final[Mapping[str, LibraryTable]] = MappingProxyType(
    {"aiohttp.client_exceptions": _AIOHTTP}
)
"""Module name -> table."""

RESPONSE_ERROR: Final = ("aiohttp.client_exceptions", "ClientResponseError")
"""The class whose family is decided by HTTP status."""
