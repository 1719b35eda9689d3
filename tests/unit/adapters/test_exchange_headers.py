"""The exchange context as HTTP headers (REST and SAP OData share them): names kept, values made valid."""

from __future__ import annotations

import httpx
import requests

from adapters.base import BackendCall
from adapters.headers import exchange_headers, header_value

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def call(*metadata: tuple[str, str]) -> BackendCall:
    return BackendCall("/business.v1.BusinessRegister/GetCompany", 5.0, metadata)


def test_every_context_pair_becomes_a_header_of_the_same_name_and_value() -> None:
    metadata = (
        ("crossway-client", "EE/GOV/70000001/tax"),
        ("crossway-message-id", "0b5e1c9e-3d1c-4c1e-9d7a-1f2e3d4c5b6a"),
        ("crossway-user-id", "EE38001085718"),
        ("crossway-purpose", "tax-assessment"),
        ("traceparent", TRACEPARENT),
    )
    assert exchange_headers(call(*metadata)) == dict(metadata)


def test_empty_values_are_not_sent() -> None:
    # No end user, no trace: a backend sees no header rather than an empty one.
    assert exchange_headers(call(("crossway-user-id", ""), ("traceparent", " "), ("crossway-purpose", "x"))) == {
        "crossway-purpose": "x"
    }


def test_values_that_are_no_valid_header_value_are_escaped_not_refused() -> None:
    assert header_value("Jüri Õun") == "J%C3%BCri %C3%95un"  # UTF-8, percent-encoded: lossless
    assert header_value("audit\r\nx-injected: yes") == "audit%0D%0Ax-injected: yes"  # no second header line
    assert header_value("  tax-assessment\t") == "tax-assessment"  # HTTP trims outer whitespace anyway
    assert header_value("100% sure") == "100% sure"  # a valid value is never changed


def test_both_http_clients_accept_every_escaped_value() -> None:
    headers = exchange_headers(call(("crossway-user-id", "Jüri\n"), ("crossway-purpose", "\x00mõte\x7f")))
    httpx.Request("GET", "http://sap.invalid/", headers=headers)  # REST (httpx): ASCII only
    requests.Request("GET", "http://sap.invalid/", headers=headers).prepare()  # SAP (requests): no CR/LF
    assert headers == {"crossway-user-id": "J%C3%BCri", "crossway-purpose": "%00m%C3%B5te%7F"}
