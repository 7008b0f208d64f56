"""The pub/sub messages every process reads: only plain, bounded milliseconds count."""

from __future__ import annotations

import pytest

from virtuoso_resilience.shared._link import millis_after


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("pause:1500", 1500),
        ("pause:86400000", 86_400_000),
        ("pause:0", None),
        ("pause:86400001", None),
        ("pause:-5", None),
        ("pause:+5", None),
        ("pause:1_000", None),
        ("pause:1e3", None),
        ("pause:٣", None),
        ("pause:²", None),
        ("pause:" + "9" * 400, None),
        ("pause:", None),
        ("open:1500", None),
        ("", None),
    ],
)
def test_millis_after(data: str, expected: int | None) -> None:
    assert millis_after("pause:", data) == expected
