"""Per-client quotas from the deciding permits' ``@quota`` (see ``policies.obligations``).

A token bucket per (policy, client, method): ``limit`` calls, refilled evenly over ``period_s``,
so a burst of ``limit`` is allowed and then one call per ``period_s / limit``. Every quota of
the decision must have a token left, else nothing is taken and the call is refused with
``policy.rate_limited`` naming when to retry. State is per gateway process: replicas behind a
load balancer each enforce the full limit (the operator divides it, or shares state in NATS KV
later — noted in the issue).
"""

from __future__ import annotations

import math
import threading

from crossway.core.errors import RateLimited
from policies import Quota

__all__ = ["QuotaLimiter"]

_MAX_BUCKETS = 100_000


class QuotaLimiter:
    def __init__(self) -> None:
        # key -> (tokens, last refill ms)
        self._buckets: dict[tuple[str, str, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def take(self, client: str, method: str, quotas: tuple[Quota, ...], now_ms: int) -> None:
        """Take one call from every quota, or raise ``RateLimited`` with the wait in seconds."""
        if not quotas:
            return
        with self._lock:
            refilled: list[tuple[tuple[str, str, str], float]] = []
            wait_s = 0.0
            for q in quotas:
                key = (q.policy_id, client, method)
                rate = q.limit / (q.period_s * 1000)  # tokens per ms
                tokens, last = self._buckets.get(key, (float(q.limit), now_ms))
                tokens = min(float(q.limit), tokens + (now_ms - last) * rate)
                if tokens < 1.0:
                    wait_s = max(wait_s, (1.0 - tokens) / rate / 1000)
                refilled.append((key, tokens))
            if wait_s > 0:
                retry = max(1, math.ceil(wait_s))
                names = ", ".join(f"{q.policy_id} ({q.limit}/{q.period_s}s)" for q in quotas)
                raise RateLimited(
                    f"{client} exceeded the quota of {method} under {names}; retry after {retry} s",
                    hint=f"retry after {retry} s, or ask the service owner for a higher @quota",
                )
            if len(self._buckets) > _MAX_BUCKETS:
                self._buckets.clear()  # bounded memory; a reset only ever grants a fresh burst
            for key, tokens in refilled:
                self._buckets[key] = (tokens - 1.0, now_ms)
