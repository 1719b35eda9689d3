"""One side of one exchange: the steps' values go to the recorder, which alone makes the record."""

from __future__ import annotations

import base64
import hashlib

import grpc

from crossway.core.clock import ManualClock
from crossway.core.errors import PolicyDenied, UpstreamFailed
from gateway.shared.recorder import ExchangeRecorder
from gateway.wire.frames import FrameKind, FrameSignature, Header, SignedFrame

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _recorder(side: str = "provider") -> tuple[ExchangeRecorder, ManualClock]:
    clock = ManualClock()
    return ExchangeRecorder(side, clock), clock


def _frame(signature: bytes, **header: object) -> SignedFrame:
    h = Header(**{"message_id": "m-7", "kind": FrameKind.REQUEST, **header})  # type: ignore[arg-type]
    return SignedFrame(h, b"", b"", b"", FrameSignature("ES256", "k", signature))


def test_a_fresh_recorder_records_ok_with_empty_digests_and_no_signatures() -> None:
    rec, _ = _recorder("client")
    rec.received("m-1")
    record = rec.record("EE/GOV/70000002/gw1")
    assert (record.gateway, record.side, record.message_id) == ("EE/GOV/70000002/gw1", "client", "m-1")
    assert (record.status, record.error_code) == ("OK", "")
    assert (record.request_size, record.response_size) == (0, 0)
    assert record.request_sha256 == record.response_sha256 == EMPTY_SHA256
    assert record.request_signature == record.response_signature == ""


def test_sizes_and_digests_cover_everything_added_in_order() -> None:
    rec, _ = _recorder()
    for chunk in (b"first ", b"second"):
        rec.add_request(chunk)
    rec.add_response(b"answer")
    record = rec.record("gw")
    assert record.request_size == len(b"first second")
    assert record.request_sha256 == hashlib.sha256(b"first second").hexdigest()
    assert record.response_size == 6
    assert record.response_sha256 == hashlib.sha256(b"answer").hexdigest()


def test_a_failure_records_the_errors_status_name_and_code() -> None:
    rec, _ = _recorder()
    rec.failed(PolicyDenied("no policy permits EE/GOV/70000002/tax"))
    record = rec.record("gw")
    assert (record.status, record.error_code) == ("PERMISSION_DENIED", "policy.denied")


def test_a_failure_upstream_records_the_backends_status() -> None:
    rec, _ = _recorder()
    rec.failed(UpstreamFailed("not found", status=grpc.StatusCode.NOT_FOUND))
    record = rec.record("gw")
    assert (record.status, record.error_code) == ("NOT_FOUND", "upstream.error")


def test_a_cancelled_exchange_is_recorded_as_cancelled_by_the_client() -> None:
    rec, _ = _recorder("client")
    rec.cancelled()
    record = rec.record("gw")
    assert (record.status, record.error_code) == ("CANCELLED", "client.cancelled")


def test_signatures_are_recorded_as_standard_base64() -> None:
    request_sig, response_sig = bytes(range(256))[:72], b"\xfb\xff\xfe" * 21
    rec, _ = _recorder("client")
    rec.request_signed(_frame(request_sig))
    rec.response_signed(_frame(response_sig, kind=FrameKind.RESPONSE))
    record = rec.record("gw")
    assert base64.b64decode(record.request_signature, validate=True) == request_sig
    assert base64.b64decode(record.response_signature, validate=True) == response_sig
    assert "+" in record.response_signature or "/" in record.response_signature  # not the URL-safe alphabet


def test_a_verified_request_supplies_the_signed_ids_and_the_four_times_are_taken_in_order() -> None:
    rec, clock = _recorder()
    rec.received()
    rec.peer("EE/GOV/70000002/gw1")
    rec.verified_request(
        _frame(
            b"sig",
            client="EE/GOV/70000002/tax",
            service="EE/GOV/70000001/population/population.v1.PersonRegistry",
            method="GetPerson",
            user_id="EE38001010000",
            purpose="tax-audit",
        )
    )
    rec.decided(True, ("p1", "p2"), "v7")
    for step in (rec.forwarded, rec.answered):
        clock.advance(1)
        step()
    rec.withheld(("address",))
    rec.traced(0x0AF7651916CD43DD8448EB211C80319C)
    clock.advance(1)
    record = rec.record("EE/GOV/70000001/gw1")
    assert (record.message_id, record.client, record.method, record.user_id, record.purpose) == (
        "m-7",
        "EE/GOV/70000002/tax",
        "GetPerson",
        "EE38001010000",
        "tax-audit",
    )
    start = record.request_in_ms
    assert (record.request_out_ms, record.response_in_ms, record.response_out_ms) == (start + 1, start + 2, start + 3)
    assert (record.decision, record.policy_ids, record.policy_version) == ("allow", ("p1", "p2"), "v7")
    assert (record.withheld_fields, record.peer_gateway) == (("address",), "EE/GOV/70000002/gw1")
    assert record.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert record.request_signature == base64.b64encode(b"sig").decode()


def test_a_denial_is_recorded_with_the_deciding_policies() -> None:
    rec, _ = _recorder()
    rec.decided(False, ("forbid-marketing",), "v3")
    record = rec.record("gw")
    assert (record.decision, record.policy_ids, record.policy_version) == ("deny", ("forbid-marketing",), "v3")


def test_withheld_fields_from_every_message_are_merged_once_and_sorted() -> None:
    rec, _ = _recorder()
    rec.withheld(("health_notes", "address"))
    rec.withheld(("address",))
    assert rec.record("gw").withheld_fields == ("address", "health_notes")


def test_each_record_gets_its_own_record_id() -> None:
    rec, _ = _recorder("client")
    assert rec.record("gw").record_id != rec.record("gw").record_id


def test_a_recorder_keeps_no_bodies_when_archiving_is_off() -> None:
    rec, _ = _recorder("client")
    rec.add_request(b"secret")
    rec.add_response(b"secret")
    assert rec.bodies is None
