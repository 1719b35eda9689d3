"""Telling a refused TLS handshake from a backend that is down, in both HTTP clients' error chains."""

from __future__ import annotations

import ssl

import httpx
import requests
import urllib3

from adapters.sap.errors import translate
from adapters.tls import tls_failure


def _raised_from(cause: BaseException, wrapper: type[Exception]) -> Exception:
    try:
        raise wrapper("transport failed") from cause
    except Exception as exc:
        return exc


def test_an_httpx_transport_error_raised_from_an_ssl_error_names_the_tls_reason() -> None:
    alert = ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required")
    alert.reason = "TLSV13_ALERT_CERTIFICATE_REQUIRED"
    assert tls_failure(_raised_from(alert, httpx.ReadError)) == "tlsv13 alert certificate required"


def test_a_requests_ssl_error_wrapping_urllib3_s_in_its_args_names_the_tls_reason() -> None:
    alert = ssl.SSLError(1, "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca")
    alert.reason = "TLSV1_ALERT_UNKNOWN_CA"
    retry = urllib3.exceptions.MaxRetryError(None, "/odata/", urllib3.exceptions.SSLError(alert))  # type: ignore[arg-type]
    error = translate(requests.exceptions.SSLError(retry), "https://sap.example/odata/")
    assert error.code == "upstream.unavailable"
    assert error.message == "TLS with SAP at https://sap.example/odata/ failed: tlsv1 alert unknown ca"
    assert "`ca`" in error.hint


def test_a_refused_connection_is_not_a_tls_failure() -> None:
    assert tls_failure(_raised_from(ConnectionRefusedError(111, "Connection refused"), httpx.ConnectError)) is None
    error = translate(requests.exceptions.ConnectionError("refused"), "http://sap.example/")
    assert error.message == "SAP at http://sap.example/ is unreachable: ConnectionError"
