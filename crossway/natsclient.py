"""Connecting to NATS without hanging: probe first, connect with a bounded attempt, then persist.

nats-py's own retry of a *first* connect (``max_reconnect_attempts=-1``) can swallow task
cancellation (an ``asyncio.wait_for`` races inside its connect path), so an owner's ``aclose()``
could hang while NATS was down. Here the first connect is ours: probe the port with a plain TCP
read of the server's INFO line, only then let nats-py connect once, and when connected switch
its reconnecting to "forever" (the options dict is what it consults on each disconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import nats.errors
from nats.aio.client import Client as NATS

__all__ = ["close_owner", "connect_when_up", "connection_state", "nats_answers", "wait_for_nats"]

log = logging.getLogger(__name__)

ErrorCallback = Callable[[Exception], Awaitable[None]]
EventCallback = Callable[[], Awaitable[None]]


async def nats_answers(url: str, timeout: float, on_error: ErrorCallback) -> bool:
    """Does a NATS server answer at the (first) URL's address with its INFO line within ``timeout``?"""
    parts = urlsplit(url.split(",")[0].strip())
    host, port = parts.hostname or "127.0.0.1", parts.port or 4222
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                line = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError) as exc:
        await on_error(exc)
        return False
    return line.startswith(b"INFO")


async def connect_when_up(
    url: str,
    *,
    name: str,
    connect_timeout: float,
    retry_interval: float,
    on_error: ErrorCallback,
    on_disconnected: EventCallback,
    on_reconnected: EventCallback,
) -> tuple[NATS, int]:
    """Retry every ``retry_interval`` until NATS answers and accepts us; returns the client (set
    to reconnect forever from now on) and the number of attempts. Cancellable at any await."""
    attempt = 0
    while True:
        attempt += 1
        if await nats_answers(url, connect_timeout, on_error):
            nc = NATS()
            try:
                await nc.connect(
                    url,
                    name=name,
                    connect_timeout=max(1, round(connect_timeout)),
                    reconnect_time_wait=max(0.1, retry_interval),  # type: ignore[arg-type]  # float works
                    max_reconnect_attempts=1,
                    allow_reconnect=False,
                    error_cb=on_error,
                    disconnected_cb=on_disconnected,
                    reconnected_cb=on_reconnected,
                )
            except (OSError, TimeoutError, nats.errors.Error) as exc:
                log.warning("%s: NATS connect failed: %r", name, exc)
            else:
                nc.options["allow_reconnect"] = True
                nc.options["max_reconnect_attempts"] = -1
                return nc, attempt
        await asyncio.sleep(retry_interval)


async def close_owner(task: asyncio.Task[Any] | None, nc: NATS | None, *, drain: bool = False) -> None:
    """How every NATS-backed owner stops: cancel its background task and wait for it, then
    close (or drain, to flush what is in flight) its connection; errors of a dying connection
    are not the caller's concern."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if nc is not None:
        with contextlib.suppress(Exception):
            await (nc.drain() if drain else nc.close())


# -- waiting for NATS before a component starts (issue 13) ----------------------------------------


async def wait_for_nats(
    url: str,
    *,
    who: str,
    probe_timeout: float = 2.0,
    first_delay: float = 0.5,
    max_delay: float = 10.0,
) -> int:
    """Return once a NATS server answers at ``url``; the number of attempts it took.

    Until then: one log line per failed attempt (what was tried, why it failed, when the next
    try is — no traceback), exponential backoff with jitter (so a fleet of components
    restarted together does not retry in step), and every wait cancellable: a component
    told to stop while NATS is away stops at once. Only plain asyncio is awaited here, never
    nats-py's own first-connect loop (see the module docstring).
    """
    attempt = 0
    delay = first_delay
    failure: list[Exception] = []

    async def remember(exc: Exception) -> None:
        failure.append(exc)

    while True:
        attempt += 1
        failure.clear()
        if await nats_answers(url, probe_timeout, remember):
            if attempt > 1:
                log.info("%s: NATS at %s answers after %d attempt(s)", who, url, attempt)
            return attempt
        pause = random.uniform(first_delay, delay)  # noqa: S311 - jitter, not a secret
        if not failure:
            reason = "something answers, but not with a NATS INFO line"
        elif str(failure[0]):
            reason = f"{type(failure[0]).__name__}: {failure[0]}"
        else:
            reason = f"no answer within {probe_timeout:g} s"
        log.warning("%s: NATS at %s does not answer (%s); attempt %d, next in %.1f s", who, url, reason, attempt, pause)
        await asyncio.sleep(pause)
        delay = min(max_delay, delay * 2)


def connection_state(nc: NATS | None) -> tuple[str, str]:
    """(state, server) of a client for an operator: connected, reconnecting, connecting, closed or
    "not connected"; the server as host:port — never the URL's credentials."""
    if nc is None:
        return "not connected", ""
    url = getattr(nc, "connected_url", None)
    server = f"{url.hostname}:{url.port}" if url is not None and url.hostname else ""
    for state, flag in (
        ("connected", nc.is_connected),
        ("reconnecting", nc.is_reconnecting),
        ("connecting", nc.is_connecting),
        ("closed", nc.is_closed),
    ):
        if flag:
            return state, server
    return "not connected", server
