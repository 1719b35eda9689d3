"""One side of one exchange, collected step by step and frozen into its audit record."""

from __future__ import annotations

import base64
import hashlib

import grpc

from crossway.core.errors import PolicyDenied, UpstreamFailed
from gateway.shared.recorder import Exchange

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def test_a_fresh_exchange_records_ok_with_empty_digests_and_no_signatures() -> None:
    record = Exchange(side="client", message_id="m-1").record("EE/GOV/70000002/gw1")
    assert (record.gateway, record.side, record.message_id) == ("EE/GOV/70000002/gw1", "client", "m-1")
    assert (record.status, record.error_code) == ("OK", "")
    assert (record.request_size, record.response_size) == (0, 0)
    assert record.request_sha256 == record.response_sha256 == EMPTY_SHA256
    assert record.request_signature == record.response_signature == ""


def test_sizes_and_digests_cover_everything_added_in_order() -> None:
    exchange = Exchange(side="provider")
    for chunk in (b"first ", b"second"):
        exchange.add_request(chunk)
    exchange.add_response(b"answer")
    record = exchange.record("gw")
    assert record.request_size == len(b"first second")
    assert record.request_sha256 == hashlib.sha256(b"first second").hexdigest()
    assert record.response_size == 6
    assert record.response_sha256 == hashlib.sha256(b"answer").hexdigest()


def test_fail_records_the_errors_status_name_and_code() -> None:
    exchange = Exchange(side="provider")
    exchange.fail(PolicyDenied("no policy permits EE/GOV/70000002/tax"))
    record = exchange.record("gw")
    assert (record.status, record.error_code) == ("PERMISSION_DENIED", "policy.denied")


def test_fail_with_an_upstream_error_records_the_backends_status() -> None:
    exchange = Exchange(side="provider")
    exchange.fail(UpstreamFailed("not found", status=grpc.StatusCode.NOT_FOUND))
    assert (exchange.record("gw").status, exchange.record("gw").error_code) == ("NOT_FOUND", "upstream.error")


def test_fail_status_records_a_raw_status_and_code() -> None:
    exchange = Exchange(side="client")
    exchange.fail_status(grpc.StatusCode.DATA_LOSS, "message.stream_broken")
    record = exchange.record("gw")
    assert (record.status, record.error_code) == ("DATA_LOSS", "message.stream_broken")


def test_signatures_are_recorded_as_standard_base64() -> None:
    request_sig, response_sig = bytes(range(256))[:72], b"\xfb\xff\xfe" * 21
    exchange = Exchange(side="client", request_signature=request_sig, response_signature=response_sig)
    record = exchange.record("gw")
    assert base64.b64decode(record.request_signature, validate=True) == request_sig
    assert base64.b64decode(record.response_signature, validate=True) == response_sig
    assert "+" in record.response_signature or "/" in record.response_signature  # not the URL-safe alphabet


def test_the_other_fields_are_copied_into_the_record() -> None:
    exchange = Exchange(
        side="provider",
        client="EE/GOV/70000002/tax",
        service="EE/GOV/70000001/population/population.v1.PersonRegistry",
        method="GetPerson",
        user_id="EE38001010000",
        purpose="tax-audit",
        request_in_ms=1,
        request_out_ms=2,
        response_in_ms=3,
        response_out_ms=4,
        decision="allow",
        policy_ids=("p1", "p2"),
        policy_version="v7",
        withheld_fields=("address",),
        peer_gateway="EE/GOV/70000002/gw1",
        trace_id="0af7651916cd43dd8448eb211c80319c",
    )
    record = exchange.record("EE/GOV/70000001/gw1")
    assert (record.client, record.method, record.user_id, record.purpose) == (
        "EE/GOV/70000002/tax",
        "GetPerson",
        "EE38001010000",
        "tax-audit",
    )
    assert (record.request_in_ms, record.request_out_ms, record.response_in_ms, record.response_out_ms) == (1, 2, 3, 4)
    assert (record.decision, record.policy_ids, record.policy_version) == ("allow", ("p1", "p2"), "v7")
    assert (record.withheld_fields, record.peer_gateway) == (("address",), "EE/GOV/70000002/gw1")
    assert record.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert record.service == "EE/GOV/70000001/population/population.v1.PersonRegistry"


def test_each_record_gets_its_own_record_id() -> None:
    exchange = Exchange(side="client")
    assert exchange.record("gw").record_id != exchange.record("gw").record_id
