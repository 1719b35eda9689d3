"""Why TLS to a backend failed, from the exception chain of an HTTP client's transport error.

httpx and requests both report a refused handshake as a generic transport error ("ReadError",
"ConnectionError"), which reads like a backend that is down. The ``ssl.SSLError`` underneath
says what an operator must fix — the backend's CA is not trusted, or the backend wants a client
certificate it does not get — so the adapters put it in the message and point at the settings.
"""

from __future__ import annotations

import ssl

__all__ = ["TLS_HINT", "tls_failure"]

TLS_HINT = (
    "check the service's `ca` (the CA that issued the backend's certificate) and "
    "`client_certificate`/`client_key` (a certificate the backend trusts)"
)


def tls_failure(exc: BaseException) -> str | None:
    """The TLS layer's reason behind ``exc`` (e.g. "certificate verify failed: …"), or None."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError) and getattr(current, "verify_message", None):
            return f"certificate verify failed: {current.verify_message}"
        if isinstance(current, ssl.SSLError):
            return (current.reason or current.strerror or str(current)).lower().replace("_", " ")
        # __cause__/__context__ for `raise … from`; requests wraps in args, urllib3 in `reason`.
        wrapped = (current.__cause__, current.__context__, getattr(current, "reason", None), *current.args)
        pending += [e for e in wrapped if isinstance(e, BaseException)]
    return None
