"""Fixtures for the monitoring tests."""

from __future__ import annotations

from webhook_receiver import receiver

__all__ = ["receiver"]
