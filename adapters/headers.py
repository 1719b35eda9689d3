"""The exchange's context as HTTP headers, for every adapter that calls an HTTP backend.

A backend must be able to log which agency, user and purpose a call came from and join the
trace, whatever protocol it speaks. The provider gateway puts that context in
``BackendCall.metadata`` (``crossway-client``, ``crossway-message-id``, ``crossway-user-id``,
``crossway-purpose``, ``traceparent`` — never the end user's token); the gRPC adapter sends it as
metadata, and the HTTP adapters (REST, SAP OData) send the same pairs under the same names as
headers through this one function, so the backends of both see identical headers.

Values come from callers (a purpose, a user id from a token's ``sub``), so each is made a valid
header value here rather than left to fail inside an HTTP library: outer whitespace is dropped
(HTTP trims it, and httpx and requests refuse it) and any character outside visible ASCII and
the space is percent-encoded as UTF-8 — readable, lossless for non-ASCII names, and no way to
inject a line break. Values that are already valid pass unchanged; empty ones are not sent.
"""

from __future__ import annotations

from urllib.parse import quote

from adapters.base import BackendCall

__all__ = ["exchange_headers", "header_value"]


def _visible(char: str) -> bool:
    return " " <= char <= "~"


def header_value(value: str) -> str:
    """``value`` as a valid HTTP header value: trimmed, anything else than visible ASCII escaped."""
    value = value.strip()
    if all(_visible(c) for c in value):
        return value
    return "".join(c if _visible(c) else quote(c, safe="") for c in value)


def exchange_headers(call: BackendCall) -> dict[str, str]:
    """The call's context metadata as HTTP headers, by the same names (empty values omitted)."""
    headers = {}
    for name, value in call.metadata:
        text = header_value(value)
        if text:
            headers[name] = text
    return headers
