"""The auditor's delivery evidence bundle: it verifies offline, and any single changed byte fails it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from audit.index.delivery_evidence import LogPart, assemble_delivery_evidence, verify_delivery_evidence
from audit.trail import (
    EvidenceEvent,
    EvidenceInvalid,
    MerkleTree,
    SignedEvent,
    cosign,
    delivery_record,
    leaf_hash,
    new_evidence_id,
    sign_checkpoint,
    sign_event,
)
from audit.trail.samples import sample_record
from crossway.security.pki import cert_fingerprint, cert_to_pem, self_signed
from crossway.security.signing import Signer

SENDER_GW, RECIPIENT_GW = "EE/GOV/70000004/gw1", "EE/COM/70000003/gw1"
MESSAGE = "EE/GOV/70000004/court/summons-1"
WITNESS = "crossway.registry/EE"


def _gateway() -> tuple[Signer, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = self_signed(key, "gw", valid_for=dt.timedelta(days=1))
    return Signer(key, cert_fingerprint(cert)), cert_to_pem(cert).decode()


def _event(name: str, issuer: str, previous: str, t: int) -> EvidenceEvent:
    return EvidenceEvent(
        evidence_id=new_evidence_id(),
        event=name,
        time_ms=1_700_000_000_000 + t,
        issuer=issuer,
        sender="EE/GOV/70000004/court",
        recipient="EE/COM/70000003/business",
        message_id="summons-1",
        message_type="crossway.v1.Document",
        submitted_at_ms=1_700_000_000_000,
        expires_at_ms=1_700_000_600_000,
        message_hash=hashlib.sha256(b"h").hexdigest(),
        body_sha256=hashlib.sha256(b"b").hexdigest(),
        previous=previous,
    )


def _bundle(
    *, both_logs: bool, variant: bool = False
) -> tuple[bytes, dict[str, ed25519.Ed25519PublicKey], list[SignedEvent]]:
    """Submission (sender's gateway), RelayAcceptance and ContentHandover (recipient's), each in
    its issuer's log — and with ``both_logs`` in the other's too — amid unrelated records."""
    (s_signer, s_pem), (r_signer, r_pem) = _gateway(), _gateway()
    first = sign_event(_event("SubmissionAcceptance", SENDER_GW, "", 1), s_signer)
    second = sign_event(_event("RelayAcceptance", RECIPIENT_GW, first.hash, 2), r_signer)
    third = sign_event(_event("ContentHandover", RECIPIENT_GW, second.hash, 3), r_signer)
    # ``variant``: the recipient's log holds a different event under the submission's evidence id.
    copy = sign_event(dataclasses.replace(first.event, time_ms=first.event.time_ms + 1), s_signer) if variant else first
    registry = ed25519.Ed25519PrivateKey.generate()
    parts = {}
    for gateway, signer, pem, own, other in (
        (SENDER_GW, s_signer, s_pem, [first], [second, third]),
        (RECIPIENT_GW, r_signer, r_pem, [second, third], [copy]),
    ):
        mine = own + (other if both_logs else [])
        leaves = [sample_record(n, gateway=gateway).to_json() for n in range(2)]
        leaves += [delivery_record(e, gateway, f"r{n}").to_json() for n, e in enumerate(mine)]
        tree = MerkleTree(leaf_hash(b) for b in leaves)
        checkpoint = sign_checkpoint(signer, pem, gateway, tree.size, tree.root(), int(time.time() * 1000))
        checkpoint = cosign(checkpoint, registry, WITNESS, int(time.time() * 1000))
        records = tuple((i, leaves[i].decode()) for i in range(2, len(leaves)))
        parts[gateway] = LogPart(checkpoint, tree, records)
    witnesses = {WITNESS: registry.public_key()}
    return assemble_delivery_evidence(MESSAGE, witnesses, parts), witnesses, [first, second, third]


def test_a_bundle_verifies_offline_with_its_chain_and_who_holds_each_event() -> None:
    data, anchor, events = _bundle(both_logs=True)
    report = verify_delivery_evidence(data, anchor)
    assert [e.event.event for e in report.events] == ["SubmissionAcceptance", "RelayAcceptance", "ContentHandover"]
    assert report.events == tuple(events)
    assert report.both_sides_hold_everything


def test_a_bundle_pinned_to_another_anchor_is_refused() -> None:
    data, _, _ = _bundle(both_logs=False)
    with pytest.raises(EvidenceInvalid, match="not one of the pinned witnesses"):
        verify_delivery_evidence(data, {WITNESS: ed25519.Ed25519PrivateKey.generate().public_key()})


def test_an_event_missing_from_its_issuers_log_is_refused() -> None:
    data, anchor, _ = _bundle(both_logs=False)
    report = verify_delivery_evidence(data, anchor)
    assert not report.both_sides_hold_everything


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
def test_every_single_changed_byte_fails_verification() -> None:
    data, anchor, _ = _bundle(both_logs=False)
    verify_delivery_evidence(data, anchor)
    survived = []
    for position in range(len(data)):
        changed = bytearray(data)
        changed[position] ^= 0x01  # the smallest change: one bit of one byte
        try:
            verify_delivery_evidence(bytes(changed), anchor)
        except EvidenceInvalid:
            continue
        survived.append(position)
    assert survived == [], f"{len(survived)} of {len(data)} changed bytes still verify: {survived[:10]}"


def test_an_event_whose_copies_differ_between_logs_is_refused() -> None:
    data, anchor, _ = _bundle(both_logs=True, variant=True)
    with pytest.raises(EvidenceInvalid, match="differs between the logs"):
        verify_delivery_evidence(data, anchor)
