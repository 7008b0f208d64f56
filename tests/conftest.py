"""Shared fixtures. Area-specific fixtures live in each test folder's conftest."""

from __future__ import annotations

import socket

import pytest

from virtuoso_resilience.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    """Virtual time: moves only when the test advances it."""
    return FakeClock()


@pytest.fixture
def autoclock() -> FakeClock:
    """Virtual time that jumps to a lone sleeper's deadline at once."""
    return FakeClock(autojump=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def unused_port() -> int:
    return free_port()
