"""Delivery protobufs ⇄ domain values, in one place (wire types stop at the edge)."""

from __future__ import annotations

from audit.trail import EvidenceInvalid, SignedEvent
from crossway.core.errors import MessageMalformed
from protos.crossway.v1 import delivery_pb2 as dpb

__all__ = ["event_from_pb", "event_to_pb", "events_from_pb"]

_ALG_TO_PB = {"ES256": 1, "EdDSA": 2}
_PB_TO_ALG = {v: k for k, v in _ALG_TO_PB.items()}


def event_to_pb(signed: SignedEvent) -> dpb.SignedEvent:
    return dpb.SignedEvent(
        event=signed.data,
        algorithm=_ALG_TO_PB[signed.algorithm],  # type: ignore[arg-type]
        key_id=signed.key_id,
        signature=signed.signature,
    )


def event_from_pb(p: dpb.SignedEvent) -> SignedEvent:
    """Decoded strictly; the signature is checked by whoever knows the issuer's key."""
    algorithm = _PB_TO_ALG.get(p.algorithm)
    if algorithm is None:
        raise MessageMalformed(f"an evidence event is signed with unknown algorithm #{p.algorithm}")
    try:
        return SignedEvent.of(p.event, algorithm, p.key_id, p.signature)
    except EvidenceInvalid as exc:
        raise MessageMalformed(f"an evidence event does not decode: {exc.message}") from exc


def events_from_pb(items: object) -> list[SignedEvent]:
    return [event_from_pb(p) for p in items]  # type: ignore[attr-defined]
