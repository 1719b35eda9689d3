"""A message's timeline as one file that verifies offline: its signed events and the issuers' certificates.

What a gateway hands its agency systems (``Delivery.Evidence``, ``crossway mail evidence``). The
auditor's bundle (``audit.index.delivery_evidence``) adds, for every event, its record in each
gateway's Merkle log with an inclusion proof and a cosigned checkpoint.

Format ``crossway.delivery.timeline/v1``, canonical JSON (sorted keys, no spaces, ASCII, one
trailing newline)::

    {"format": …, "sender": …, "message_id": …,
     "events": [<signed event transport JSON>, …],      # in chain order
     "certificates": {<key id>: <PEM>, …},               # the issuers' signing certificates
     "ca": [<PEM>, …]}                                   # the registry CA(s) that issued them

``verify_timeline_bundle`` steps, each failing closed with ``EvidenceInvalid``:
1. the file is canonical JSON of this format with exactly these fields;
2. the CA certificates are in canonical PEM and self-signed; with a pinned CA fingerprint (the
   registry anchor's ``ca_sha256``) one of them must be it, else they are trusted as given;
   each signing certificate is in canonical PEM, is the one its key id names, names a member (its
   ``crossway://`` URI), and was issued by one of the CAs and valid when its events were signed;
3. each event decodes strictly, is signed with a certificate of its issuer's member, and verifies;
4. the events are one chain of this message, listed in chain order.
Changing any byte of the file breaks one of these.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from audit.trail.errors import EvidenceInvalid
from audit.trail.evidence_event import SignedEvent, order_chain
from crossway.core.errors import CrosswayError
from crossway.security.keys import load_certificate
from crossway.security.pki import cert_fingerprint, cert_to_pem, inspect_certificate, verify_issued_by
from crossway.security.signing import PublicSigningKey

__all__ = ["TIMELINE_FORMAT", "TimelineReport", "build_timeline_bundle", "check_certificates", "verify_timeline_bundle"]

TIMELINE_FORMAT = "crossway.delivery.timeline/v1"
_FIELDS = {"format", "sender", "message_id", "events", "certificates", "ca"}


def canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"


@dataclass(frozen=True, slots=True)
class TimelineReport:
    sender: str
    message_id: str
    events: tuple[SignedEvent, ...]
    ca_pinned: bool  # False: the bundle's CA was trusted as given (no anchor pinned)


def build_timeline_bundle(
    events: Sequence[SignedEvent], certificates: Mapping[str, str], ca_certificates: Sequence[x509.Certificate]
) -> bytes:
    """``certificates``: key id → PEM of each issuer's signing certificate (more may be given)."""
    ordered = order_chain(events)
    if not ordered:
        raise EvidenceInvalid("a timeline needs at least one event")
    used = {e.key_id for e in ordered}
    missing = sorted(used - set(certificates))
    if missing:
        raise EvidenceInvalid(f"no certificate for signing key {missing[0][:16]}…")
    first = ordered[0].event
    return canonical(
        {
            "format": TIMELINE_FORMAT,
            "sender": first.sender,
            "message_id": first.message_id,
            "events": [e.to_json() for e in ordered],
            "certificates": {k: certificates[k] for k in sorted(used)},
            "ca": [cert_to_pem(c).decode() for c in ca_certificates],
        }
    )


def _cas(pems: Any, pinned_sha256: str | None) -> list[x509.Certificate]:
    if not isinstance(pems, list) or not pems:
        raise EvidenceInvalid("the bundle names no CA")
    cas = []
    for pem in pems:
        try:
            ca = load_certificate(str(pem).encode())
            ca.verify_directly_issued_by(ca)
        except Exception as exc:  # any parse or signature failure: not a CA we can use
            raise EvidenceInvalid(
                "a CA certificate in the bundle is not a self-signed certificate that verifies"
            ) from exc
        if cert_to_pem(ca).decode() != pem:
            raise EvidenceInvalid("a CA certificate in the bundle is not in canonical PEM form")
        cas.append(ca)
    if pinned_sha256 is not None and pinned_sha256 not in {cert_fingerprint(c) for c in cas}:
        raise EvidenceInvalid("the bundle's CA is not the one the anchor pins")
    return cas


def check_certificates(
    pems: Mapping[str, Any], events: Sequence[SignedEvent], ca_certificates: Sequence[x509.Certificate]
) -> dict[str, tuple[str, PublicSigningKey]]:
    """Step 2: key id → (member, public key), each certificate checked (and chained, given CAs)."""
    out: dict[str, tuple[str, PublicSigningKey]] = {}
    for key_id, pem in pems.items():
        try:
            certificate = load_certificate(str(pem).encode())
            info = inspect_certificate(str(pem).encode())
        except (ValueError, CrosswayError) as exc:
            raise EvidenceInvalid(f"certificate {str(key_id)[:16]}… does not parse") from exc
        if cert_to_pem(certificate).decode() != pem:
            raise EvidenceInvalid(f"certificate {str(key_id)[:16]}… is not in canonical PEM form")
        if cert_fingerprint(certificate) != key_id:
            raise EvidenceInvalid(f"certificate {str(key_id)[:16]}… is stored under another key id")
        if info.member is None:
            raise EvidenceInvalid(f"certificate {str(key_id)[:16]}… names no member")
        for signed in events:
            if signed.key_id == key_id:
                try:
                    verify_issued_by(certificate, ca_certificates, signed.event.time_ms)
                except CrosswayError as exc:
                    raise EvidenceInvalid(f"certificate {str(key_id)[:16]}…: {exc.message}") from exc
        public: PublicSigningKey = certificate.public_key()  # type: ignore[assignment]
        out[str(key_id)] = (str(info.member), public)
    return out


def verify_events(events: Sequence[SignedEvent], keys: Mapping[str, tuple[str, PublicSigningKey]]) -> None:
    """Step 3: each event signed with a certificate of its issuer's member."""
    for signed in events:
        e = signed.event
        entry = keys.get(signed.key_id)
        if entry is None:
            raise EvidenceInvalid(f"event {e.evidence_id}: no certificate for its key")
        member, key = entry
        if not e.issuer.startswith(member + "/") or e.issuer.count("/") != 3:
            raise EvidenceInvalid(f"event {e.evidence_id}: issuer {e.issuer} is not a gateway of {member}")
        signed.verify(key)


def verify_timeline_bundle(data: bytes, pinned_ca_sha256: str | None = None) -> TimelineReport:
    # 1. canonical, this format, these fields
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EvidenceInvalid("the bundle is not valid JSON") from exc
    if not isinstance(doc, dict) or doc.get("format") != TIMELINE_FORMAT or set(doc) != _FIELDS:
        raise EvidenceInvalid(f"the bundle is not of format {TIMELINE_FORMAT} with exactly its fields")
    if canonical(doc) != data:
        raise EvidenceInvalid("the bundle is not in canonical form: it was edited after export")
    if not isinstance(doc["events"], list) or not isinstance(doc["certificates"], dict):
        raise EvidenceInvalid("the bundle's events or certificates are malformed")
    events = [SignedEvent.from_json(str(e)) for e in doc["events"]]
    if not events:
        raise EvidenceInvalid("the bundle holds no events")
    # 2. the CA, the certificates; 3. signatures
    keys = check_certificates(doc["certificates"], events, _cas(doc["ca"], pinned_ca_sha256))
    if set(keys) != {e.key_id for e in events}:
        raise EvidenceInvalid("the bundle's certificates are not exactly the events' signing keys")
    verify_events(events, keys)
    # 4. one chain of this message, in chain order
    if order_chain(events) != events:
        raise EvidenceInvalid("the events are not listed in chain order")
    first = events[0].event
    if (first.sender, first.message_id) != (doc["sender"], doc["message_id"]):
        raise EvidenceInvalid("the events are not of the message the bundle names")
    return TimelineReport(first.sender, first.message_id, tuple(events), pinned_ca_sha256 is not None)
