"""The console's own defences, on every response and every request that changes something.

Responses (all of them, error pages and static files included):
- ``Content-Security-Policy``: ``default-src 'self'`` and nothing inline — no inline script, no
  inline style, no ``eval`` (htmx's indicator styles are turned off by a meta tag, its ``hx-on``
  attributes are not used); no framing (``frame-ancestors 'none'``), forms post only here;
- ``Referrer-Policy: same-origin``: search pages carry filters in their URLs, which no other
  site gets (not ``no-referrer``: with it browsers send ``Origin: null`` on this console's own
  form posts, and the Origin check below would refuse them),
  ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``, ``Cross-Origin-Opener-Policy``;
- ``Cache-Control: no-store`` on pages (they show audit data), HSTS when served over https.

Requests with an unsafe method (POST, PUT, PATCH, DELETE), numbered, each failing closed (403):
1. the browser says it came from this origin: ``Origin`` (when sent) is the console's own, and
   ``Sec-Fetch-Site`` (when sent) is not ``cross-site``/``same-site``;
2. the session's CSRF token is in the form (``csrf_token``) or the ``X-CSRF-Token`` header,
   compared in constant time (a signed-out visitor has no session, so no token matches).
The demo provider's pages have no session yet: they get check 1 only, and its token endpoint
(a back-channel call from the console itself, with no browser involved) neither.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp

__all__ = ["CSP", "SecurityMiddleware", "csrf_ok"]

log = logging.getLogger("console.requests")

CSP = (
    "default-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'; "
    "form-action 'self'; img-src 'self'; style-src 'self'; script-src 'self'"
)
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_BODY = 1 << 20  # a policy upload is a few kilobytes
SESSION_COOKIE = "crossway_session"
SECURE_SESSION_COOKIE = "__Host-crossway_session"

SessionCsrf = Callable[[Request], str | None]  # the session's CSRF token, None when signed out


async def csrf_ok(request: Request, expected: str | None) -> bool:
    """2. the session's token, from the form or the htmx header."""
    if not expected:
        return False
    sent = request.headers.get("x-csrf-token", "")
    if not sent:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            # Read the body first: BaseHTTPMiddleware replays a body read this way to the handler.
            await request.body()
            form = await request.form()
            value = form.get("csrf_token", "")
            sent = value if isinstance(value, str) else ""
    return hmac.compare_digest(sent.encode(), expected.encode())


class SecurityMiddleware(BaseHTTPMiddleware):
    def __init__(self, app: ASGIApp, *, origin: Callable[[], str], csrf: SessionCsrf, https: bool) -> None:
        super().__init__(app)
        self._origin = origin  # the console's own origin, known once it is bound
        self._csrf = csrf
        self._https = https

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await self._guard(request, call_next)
        self._headers(request, response)
        # Path only: query strings carry search filters and, on the callback, the authorization code.
        log.info(
            "%s %s %d %.1f ms",
            request.method,
            request.url.path,
            response.status_code,
            1000 * (time.perf_counter() - started),
        )
        return response

    async def _guard(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.method not in UNSAFE:
            return await call_next(request)
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            return PlainTextResponse("413 Request Entity Too Large: at most 1 MiB", status_code=413)
        path = request.url.path
        if path == "/demo-idp/token":  # back-channel: authenticated by the code and PKCE verifier
            return await call_next(request)
        # 1. from this origin
        origin = request.headers.get("origin")
        if origin is not None and origin != self._origin():
            return _refuse("cross-origin request refused")
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return _refuse("cross-site request refused")
        # 2. with this session's CSRF token (the demo provider's own forms have no session yet)
        if not path.startswith("/demo-idp/") and not await csrf_ok(request, self._csrf(request)):
            return _refuse("missing or wrong CSRF token: reload the page and try again")
        return await call_next(request)

    def _headers(self, request: Request, response: Response) -> None:
        h = response.headers
        h["Content-Security-Policy"] = CSP
        h["Referrer-Policy"] = "same-origin"
        h["X-Content-Type-Options"] = "nosniff"
        h["X-Frame-Options"] = "DENY"
        h["Cross-Origin-Opener-Policy"] = "same-origin"
        h["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if not request.url.path.startswith("/static/"):
            h["Cache-Control"] = "no-store"
        if self._https:
            h["Strict-Transport-Security"] = "max-age=31536000"


def _refuse(reason: str) -> Response:
    log.warning("refused: %s", reason)
    return PlainTextResponse(f"403 Forbidden: {reason}", status_code=403)
