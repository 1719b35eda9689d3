"""Which asyncio event loop a Crossway process runs on: uvloop (the default) or the standard one.

uvloop is libuv under asyncio's API; grpc.aio and nats-py both run on it unchanged. On this
project's benchmark machine it made a bare grpc.aio unary round trip ~10–19 % cheaper (see
``make bench``), so gateways and the benchmark's byte-forwarding proxies run on it by default.
``event_loop = "asyncio"`` in a gateway's ``[gateway]`` table selects the standard loop (for
debugging with asyncio's own tooling, or where uvloop is not wanted).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Final, TypeVar

__all__ = ["EVENT_LOOPS", "run"]

T = TypeVar("T")

EVENT_LOOPS: Final = ("uvloop", "asyncio")


def run(main: Coroutine[Any, Any, T], loop: str = "uvloop") -> T:
    """Run ``main`` to completion on a new event loop of the kind named (see :data:`EVENT_LOOPS`)."""
    if loop == "uvloop":
        import uvloop

        return uvloop.run(main)
    if loop != "asyncio":
        main.close()
        raise ValueError(f"unknown event loop {loop!r}; expected one of {', '.join(EVENT_LOOPS)}")
    return asyncio.run(main)
