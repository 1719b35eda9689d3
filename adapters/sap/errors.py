"""SAP's answers and failures → Crossway's ``upstream.*`` errors, with SAP's own message.

SAP Gateway reports errors as ``{"error": {"code", "message": {"value"}, "innererror":
{"errordetails": [{"code", "message", "target", "severity"}]}}}`` (or the same in XML); when
several messages apply, the top one is a generic "Multiple errors occurred" and the real ones
are the error details — those are what a caller needs to fix the request.
"""

from __future__ import annotations

import json
import re
from typing import Any

import grpc
import requests
from pyodata.exceptions import HttpError, PyODataException

from adapters.http_status import grpc_status_for_http
from adapters.tls import TLS_HINT, tls_failure
from crossway.core.errors import CrosswayError, Hop, UpstreamFailed, UpstreamTimeout, UpstreamUnavailable

__all__ = ["sap_message", "translate"]

_MAX = 500
_XML_MESSAGE = re.compile(rb"<(?:\w+:)?message[^>]*>([^<]*)</(?:\w+:)?message>")
_GENERIC = ("multiple errors", "see details")


def _text(message: Any) -> str:
    if isinstance(message, dict):
        message = message.get("value", "")
    return message.strip() if isinstance(message, str) else ""


def sap_message(status: int, content: bytes) -> str:
    """The message a person should read, from an SAP error payload (JSON or XML)."""
    messages: list[str] = []
    try:
        error = json.loads(content).get("error", {})
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        messages.append(_text(error.get("message")))
        inner = error.get("innererror")
        details = inner.get("errordetails", []) if isinstance(inner, dict) else []
        for detail in details if isinstance(details, list) else []:
            if isinstance(detail, dict):
                messages.append(_text(detail.get("message")))
    else:
        messages.extend(m.decode("utf-8", "replace").strip() for m in _XML_MESSAGE.findall(content))
    unique = list(dict.fromkeys(m for m in messages if m))
    specific = [m for m in unique if not any(g in m.lower() for g in _GENERIC)]
    chosen = specific or unique
    return "; ".join(chosen)[:_MAX] if chosen else f"SAP answered HTTP {status}"


def _status_and_content(response: Any) -> tuple[int, bytes]:
    # pyodata raises with a requests.Response, or (inside $batch) its own ODataHttpResponse.
    status = int(getattr(response, "status_code", 0) or 0)
    content = getattr(response, "content", b"")
    if isinstance(content, str):
        content = content.encode()
    return status, content if isinstance(content, bytes) else b""


def translate(exc: BaseException, service_url: str) -> CrosswayError:
    if isinstance(exc, CrosswayError):
        return exc
    if isinstance(exc, requests.Timeout):
        return UpstreamTimeout(f"SAP at {service_url} did not answer within the deadline", hop=Hop.BACKEND)
    if isinstance(exc, requests.ConnectionError) and (reason := tls_failure(exc)) is not None:
        return UpstreamUnavailable(f"TLS with SAP at {service_url} failed: {reason}", hint=TLS_HINT, hop=Hop.BACKEND)
    if isinstance(exc, requests.ConnectionError):
        return UpstreamUnavailable(f"SAP at {service_url} is unreachable: {type(exc).__name__}", hop=Hop.BACKEND)
    if isinstance(exc, HttpError) and exc.response is not None:
        status, content = _status_and_content(exc.response)
        if status in (502, 503):
            return UpstreamUnavailable(f"SAP at {service_url} answered HTTP {status}", hop=Hop.BACKEND)
        if status == 401:  # SAP's logon page says no more than this; the fix is in our settings
            return UpstreamFailed(
                f"SAP at {service_url} refused the gateway's logon (HTTP 401)",
                hint="check [services.sap] auth, username and the password in the variable password_env names",
                hop=Hop.BACKEND,
                status=grpc.StatusCode.UNAUTHENTICATED,
            )
        return UpstreamFailed(sap_message(status, content), hop=Hop.BACKEND, status=grpc_status_for_http(status))
    if isinstance(exc, PyODataException | KeyError | AttributeError):
        # The mapping names something SAP's $metadata does not have: the provider's configuration.
        return UpstreamFailed(
            f"the SAP mapping does not fit the service's $metadata: {exc}"[:_MAX],
            hint="compare the [services.sap] mapping with the service's $metadata",
            hop=Hop.BACKEND,
            status=grpc.StatusCode.FAILED_PRECONDITION,
        )
    return UpstreamFailed(f"SAP call failed: {type(exc).__name__}", hop=Hop.BACKEND)
