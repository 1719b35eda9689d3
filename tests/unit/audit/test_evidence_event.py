"""Evidence events: canonical bytes, signatures, the per-message chain, and their audit records."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from audit.trail import (
    AuditRecord,
    EvidenceEvent,
    EvidenceInvalid,
    SignedEvent,
    delivery_record,
    events_of_records,
    new_evidence_id,
    order_chain,
    sign_event,
)
from crossway.security.keys import generate_signing_key
from crossway.security.signing import Signer

MESSAGE_HASH = hashlib.sha256(b"header").hexdigest()
BODY = hashlib.sha256(b"body").hexdigest()


def _event(name: str, previous: str = "", t: int = 1, **changes: object) -> EvidenceEvent:
    event = EvidenceEvent(
        evidence_id=new_evidence_id(),
        event=name,
        time_ms=1_700_000_000_000 + t,
        issuer="EE/GOV/70000004/gw1",
        sender="EE/GOV/70000004/court",
        recipient="EE/COM/70000003/business",
        message_id="summons-1",
        message_type="crossway.v1.Document",
        submitted_at_ms=1_700_000_000_000,
        expires_at_ms=1_700_000_600_000,
        message_hash=MESSAGE_HASH,
        body_sha256=BODY,
        previous=previous,
    )
    return dataclasses.replace(event, **changes)  # type: ignore[arg-type]


@pytest.fixture(params=["ES256", "EdDSA"])
def signer(request: pytest.FixtureRequest) -> Signer:
    return Signer(generate_signing_key(request.param), "ab" * 32)


def _chain(signer: Signer) -> list[SignedEvent]:
    first = sign_event(_event("SubmissionAcceptance"), signer)
    second = sign_event(_event("RelayAcceptance", first.hash, 2), signer)
    third = sign_event(_event("ContentHandover", second.hash, 3), signer)
    return [first, second, third]


def test_a_signed_event_verifies_and_survives_its_transport_form(signer: Signer) -> None:
    signed = sign_event(_event("SubmissionAcceptance"), signer)
    signed.verify(signer.public_key())
    again = SignedEvent.from_json(signed.to_json())
    assert again == signed
    again.verify(signer.public_key())


def test_the_canonical_bytes_are_sorted_compact_json_naming_the_format() -> None:
    data = _event("SubmissionAcceptance").canonical()
    doc = json.loads(data)
    assert doc["format"] == "crossway.delivery.event/v1"
    assert data == json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def test_a_changed_field_no_longer_verifies(signer: Signer) -> None:
    signed = sign_event(_event("SubmissionAcceptance"), signer)
    forged_data = signed.data.replace(b"summons-1", b"summons-2")
    forged = SignedEvent.of(forged_data, signed.algorithm, signed.key_id, signed.signature)
    with pytest.raises(EvidenceInvalid, match="does not verify"):
        forged.verify(signer.public_key())


def test_non_canonical_bytes_are_refused_even_with_the_same_content() -> None:
    data = _event("SubmissionAcceptance").canonical()
    spaced = json.dumps(json.loads(data), sort_keys=True).encode()
    with pytest.raises(EvidenceInvalid, match="canonical"):
        EvidenceEvent.decode(spaced)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"event": "Delivered"}, "unknown event"),
        ({"event": "RelayRejection"}, "reason code"),
        ({"message_hash": "xyz"}, "SHA-256"),
        ({"message_hash": ""}, "without the message's hash"),
        ({"evidence_id": "short"}, "evidence id"),
    ],
)
def test_events_that_break_the_rules_are_refused(changes: dict[str, object], match: str) -> None:
    with pytest.raises(EvidenceInvalid, match=match):
        _event("SubmissionAcceptance", **changes).check()


def test_a_chain_is_ordered_from_its_first_event_whatever_the_input_order(signer: Signer) -> None:
    chain = _chain(signer)
    assert order_chain(reversed(chain)) == chain


def test_a_chain_with_a_missing_link_is_refused(signer: Signer) -> None:
    first, _, third = _chain(signer)
    with pytest.raises(EvidenceInvalid, match="not in the chain"):
        order_chain([first, third])


def test_a_chain_with_two_first_events_is_refused(signer: Signer) -> None:
    chain = _chain(signer)
    extra = sign_event(_event("SubmissionAcceptance"), signer)
    with pytest.raises(EvidenceInvalid, match="2 first events"):
        order_chain([*chain, extra])


def test_events_of_another_message_do_not_join_a_chain(signer: Signer) -> None:
    first, second, _ = _chain(signer)
    other = sign_event(_event("ContentHandover", second.hash, 3, message_id="summons-9"), signer)
    with pytest.raises(EvidenceInvalid, match="not all of message"):
        order_chain([first, second, other])


def test_a_delivery_record_carries_the_event_and_decodes_back(signer: Signer) -> None:
    chain = _chain(signer)
    records = [delivery_record(e, "EE/GOV/70000004/gw1", f"r{n}") for n, e in enumerate(chain)]
    decoded = [AuditRecord.from_json(r.to_json()) for r in records]
    assert decoded[1].side == "delivery" and decoded[1].method == "RelayAcceptance"
    assert decoded[1].message_id == "EE/GOV/70000004/court/summons-1"
    assert events_of_records(decoded + decoded) == chain
