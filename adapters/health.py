"""Passive health of an adapter: what the last calls to the backend said.

Adapters do not poll their backends (an SAP system is billed and rate-limited per request);
the traffic itself is the probe. Only transport-level failures (unreachable, timed out) make a
backend NOT_SERVING: a 404 or a validation error is a healthy backend answering.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable
from typing import TypeVar

from adapters.base import AdapterHealth, HealthStatus
from crossway.core.errors import CrosswayError, UpstreamTimeout, UpstreamUnavailable

__all__ = ["HealthTracker"]

log = logging.getLogger(__name__)


_T = TypeVar("_T")


class HealthTracker:
    def __init__(self, backend: str = "") -> None:
        self._backend = backend  # the address, for the log line of a change
        # Calls of the SAP adapter finish on worker threads: guard the swap.
        self._lock = threading.Lock()
        self._health = AdapterHealth(HealthStatus.UNKNOWN, "no call yet", int(time.time() * 1000))

    def _set(self, status: HealthStatus, detail: str) -> None:
        with self._lock:
            if self._health.status is status and self._health.detail == detail:
                return
            changed = self._health.status is not status
            self._health = AdapterHealth(status, detail, int(time.time() * 1000))
        if changed:  # transitions only: a down backend must not flood the log
            level = logging.WARNING if status is HealthStatus.NOT_SERVING else logging.INFO
            log.log(level, "backend %s is %s %s", self._backend, status.value, detail)

    async def observe(self, work: Awaitable[_T]) -> _T:
        """Await one backend call and record how it went (every adapter's unary path)."""
        try:
            result = await work
        except CrosswayError as exc:
            self.failed(exc)
            raise
        self.ok()
        return result

    def ok(self) -> None:
        self._set(HealthStatus.SERVING, "")

    def failed(self, exc: CrosswayError) -> None:
        if isinstance(exc, UpstreamUnavailable | UpstreamTimeout):
            self._set(HealthStatus.NOT_SERVING, f"{exc.code}: {exc.message}"[:300])
        else:
            self.ok()  # the backend answered, with an error of its own

    def snapshot(self) -> AdapterHealth:
        with self._lock:
            return self._health
