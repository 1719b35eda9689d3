"""The HTTP session pyodata runs on: SAP Gateway's CSRF handshake, the deadline, auth, pooling.

pyodata is synchronous and knows nothing of CSRF tokens or deadlines, so both live here, under
it, where every request it makes passes:

- CSRF (SAP Gateway): a modifying request (and ``$batch``, a POST) must carry the token that a
  GET with ``x-csrf-token: Fetch`` returned. We fetch lazily, keep the token (and its session
  cookies) for all threads, and when SAP answers 403 with ``x-csrf-token: Required`` — the token
  expired with its session — fetch once more and resend once. A second refusal is final.
- Deadline: the adapter sets the call's deadline in a context variable before it hands the
  work to a thread; each request gets the time left as its timeout, none once it has passed.
- ``sap-client`` goes on every request as a query parameter, as SAP Gateway expects.

The exchange's context headers are *not* set here: this session is shared by every exchange on
every worker thread, so they travel per request (``operations``); a resend after a CSRF refusal
keeps the request's own headers.
"""

from __future__ import annotations

import contextvars
import threading
import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from adapters.settings import SapSettings

__all__ = ["DEADLINE", "GatewaySession"]

# Monotonic time by which the current call must be answered (set per call by the adapter).
DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("crossway_sap_deadline", default=None)

_MODIFYING = frozenset({"POST", "PUT", "PATCH", "MERGE", "DELETE"})


class GatewaySession(requests.Session):
    def __init__(self, settings: SapSettings) -> None:
        super().__init__()
        self._service_url = settings.service_url
        self._csrf = settings.csrf
        self._token: str | None = None
        self._token_lock = threading.Lock()
        self.csrf_fetches = 0  # counted for health detail and tests; never the token itself
        # One pool per host, as large as the adapter's worker pool: no worker waits for a socket.
        pool = HTTPAdapter(pool_connections=1, pool_maxsize=settings.max_connections, max_retries=0)
        self.mount("https://", pool)
        self.mount("http://", pool)
        if settings.sap_client:
            self.params = {"sap-client": settings.sap_client}
        if settings.auth == "basic":
            self.auth = (settings.username, settings.password)
        tls = settings.tls
        if tls.client_certificate is not None and tls.client_key is not None:
            self.cert = (str(tls.client_certificate), str(tls.client_key))
        if tls.ca is not None:
            self.verify = str(tls.ca)

    def _timeout(self) -> float | None:
        deadline = DEADLINE.get()
        if deadline is None:
            return None
        left = deadline - time.monotonic()
        if left <= 0:
            raise requests.Timeout("the call's deadline has passed")
        return left

    def _fetch_token(self, stale: str | None) -> str | None:
        with self._token_lock:
            # Another thread may have refreshed it while we waited: use theirs.
            if self._token is not None and self._token != stale:
                return self._token
            response = super().request(
                "GET", self._service_url, headers={"x-csrf-token": "Fetch"}, timeout=self._timeout()
            )
            self.csrf_fetches += 1
            token = response.headers.get("x-csrf-token")
            # A system without CSRF protection sends none: then there is nothing to send.
            self._token = token if token and token.lower() != "required" else None
            return self._token

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        verb = method.decode() if isinstance(method, bytes) else method
        kwargs["timeout"] = self._timeout()
        if not self._csrf or verb.upper() not in _MODIFYING:
            return super().request(method, url, *args, **kwargs)
        token = self._token if self._token is not None else self._fetch_token(None)
        response = self._send(method, url, token, args, kwargs)
        if response.status_code == 403 and response.headers.get("x-csrf-token", "").lower() == "required":
            response.close()
            token = self._fetch_token(token)
            kwargs["timeout"] = self._timeout()
            response = self._send(method, url, token, args, kwargs)
        return response

    def _send(
        self, method: str | bytes, url: str | bytes, token: str | None, args: Any, kwargs: dict[str, Any]
    ) -> requests.Response:
        headers = dict(kwargs.get("headers") or {})
        if token is not None:
            headers["x-csrf-token"] = token
        return super().request(method, url, *args, **{**kwargs, "headers": headers})
