"""Polling a condition with a deadline: how tests, the demo and the benchmarks wait, never by fixed sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(condition: Callable[[], T], timeout: float, interval: float = 0.01) -> T | None:
    """The first truthy result of ``condition`` within ``timeout`` seconds, else None."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)
