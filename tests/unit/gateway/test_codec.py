"""Sealing and opening envelopes: signature over the header bytes, digest over the body, fail closed."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest

from crossway.core.errors import MessageMalformed, MessageTampered, SignatureInvalid
from crossway.security.keys import generate_signing_key
from crossway.security.signing import Signer
from gateway.wire.codec import envelope_from_pb, envelope_to_pb, open_envelope, seal_frame
from gateway.wire.frames import Encryption, ExchangeStatus, FrameKind, Header, SignedFrame
from protos.crossway.v1 import envelope_pb2 as pb

MEMBER = "EE/GOV/70000001"
OTHER = "EE/GOV/70000002"
KEY_ID = "ab" * 32


@pytest.fixture(scope="module", params=["ES256", "EdDSA"])
def key(request: pytest.FixtureRequest) -> Any:
    return generate_signing_key(request.param)


@pytest.fixture
def signer(key: Any) -> Signer:
    return Signer(key, key_id=KEY_ID)


def lookup_for(key: Any, member: str = MEMBER, key_id: str = KEY_ID) -> Any:
    """The registry's view: exactly one signing key, of one member."""

    def lookup(who: str, kid: str) -> Any:
        return key.public_key() if (who, kid) == (member, key_id) else None

    return lookup


def seal(header: Header, body: bytes, signer: Signer) -> tuple[pb.Envelope, SignedFrame]:
    """Sealed, then as it travels: the ``crossway.v1.Envelope`` protobuf."""
    env, frame = seal_frame(header, body, signer)
    return envelope_to_pb(env), frame


def open_wire(env: pb.Envelope, member: str, lookup: Any) -> SignedFrame:
    """Opened as a peer gateway does: from the protobuf off the wire."""
    return open_envelope(envelope_from_pb(env), member, lookup)


def header(**fields: Any) -> Header:
    return Header(**{"message_id": "m-1", "kind": FrameKind.REQUEST, "signer": MEMBER, **fields})


def test_a_sealed_envelope_opens_with_the_same_header_and_body(key: Any, signer: Signer) -> None:
    env, sealed = seal(header(client="EE/GOV/70000002/tax"), b"body", signer)
    opened = open_wire(env, MEMBER, lookup_for(key))
    assert opened.body == b"body"
    assert opened.header == sealed.header
    assert opened.header.body_sha256 == hashlib.sha256(b"body").digest()
    assert opened.header_bytes == env.header == sealed.header_bytes
    assert opened.header_hash == hashlib.sha256(env.header).digest() == sealed.header_hash
    assert opened.signature == sealed.signature
    assert (opened.signature.algorithm, opened.signature.key_id) == (signer.algorithm, KEY_ID)


def test_every_header_field_survives_the_round_trip(key: Any, signer: Signer) -> None:
    full = Header(
        message_id="m-42",
        kind=FrameKind.RESPONSE,
        client="EE/GOV/70000002/tax",
        service="EE/GOV/70000001/population/population.v1.PersonRegistry",
        method="GetPerson",
        user_id="EE38001010000",
        purpose="tax-audit",
        issued_at_ms=1_700_000_000_123,
        deadline_ms=1_700_000_005_000,
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        body_sha256=b"",  # set by seal_frame
        request_hash=b"\x01" * 32,
        sequence=7,
        previous_hash=b"\x02" * 32,
        encryption=Encryption(b"\x03" * 32, b"\x04" * 32, b"\x05" * 12),
        status=ExchangeStatus(5, "service.unknown", "no such service", "check the name"),
        signer=MEMBER,
        client_streaming=True,
        server_streaming=True,
        withheld_fields=("address", "birth_date"),
        user_token="eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
        event_key="38001010001",
        key_sequence=4,
    )
    # Guard: every field of Header is set to a non-default value here, so none can be dropped silently.
    defaults = Header(message_id="", kind=FrameKind.REQUEST)
    unset = [f.name for f in dataclasses.fields(Header) if getattr(full, f.name) == getattr(defaults, f.name)]
    assert unset == ["body_sha256"]

    env, _ = seal(full, b"payload", signer)
    opened = open_wire(env, MEMBER, lookup_for(key))
    assert opened.header == dataclasses.replace(full, body_sha256=hashlib.sha256(b"payload").digest())


def test_a_header_repr_never_shows_the_end_user_token() -> None:
    assert "eyJ" not in repr(Header(message_id="m", kind=FrameKind.REQUEST, user_token="eyJ.secret.sig"))


def test_an_ok_status_and_empty_encryption_stay_present_after_the_round_trip(key: Any, signer: Signer) -> None:
    env, _ = seal(header(status=ExchangeStatus(), encryption=Encryption(b"", b"", b"")), b"", signer)
    opened = open_wire(env, MEMBER, lookup_for(key)).header
    assert opened.status == ExchangeStatus() and opened.status.ok
    assert opened.encryption == Encryption(b"", b"", b"")


def test_absent_status_and_encryption_stay_absent(key: Any, signer: Signer) -> None:
    env, _ = seal(header(), b"x", signer)
    opened = open_wire(env, MEMBER, lookup_for(key)).header
    assert opened.status is None and opened.encryption is None


def test_a_changed_body_is_reported_as_tampered(key: Any, signer: Signer) -> None:
    env, _ = seal(header(), b"pay 10 EUR", signer)
    env.body = b"pay 99 EUR"
    with pytest.raises(MessageTampered, match="m-1"):
        open_wire(env, MEMBER, lookup_for(key))


def test_a_changed_header_byte_fails_the_signature(key: Any, signer: Signer) -> None:
    env, _ = seal(header(user_id="EE38001010000"), b"x", signer)
    raw = bytearray(env.header)
    raw[raw.index(b"EE3800")] ^= 0x01  # still parses; only the signature can tell
    env.header = bytes(raw)
    with pytest.raises(SignatureInvalid):
        open_wire(env, MEMBER, lookup_for(key))


def test_a_signature_by_another_key_with_the_same_key_id_is_rejected(key: Any, signer: Signer) -> None:
    impostor = Signer(generate_signing_key(signer.algorithm), KEY_ID)
    env, _ = seal(header(), b"x", impostor)
    with pytest.raises(SignatureInvalid):
        open_wire(env, MEMBER, lookup_for(key))


def test_an_unknown_key_id_is_rejected_naming_the_member(key: Any) -> None:
    env, _ = seal(header(), b"x", Signer(key, key_id="cd" * 32))
    with pytest.raises(SignatureInvalid, match=f"member {MEMBER} has no registered signing key cdcd"):
        open_wire(env, MEMBER, lookup_for(key))


def test_the_key_is_looked_up_for_the_peer_member_and_the_envelopes_key_id(key: Any, signer: Signer) -> None:
    asked: list[tuple[str, str]] = []

    def lookup(member: str, key_id: str) -> Any:
        asked.append((member, key_id))
        return key.public_key()

    env, _ = seal(header(), b"x", signer)
    open_wire(env, MEMBER, lookup)
    assert asked == [(MEMBER, KEY_ID)]


def test_a_header_naming_another_signer_than_the_peer_is_rejected(key: Any, signer: Signer) -> None:
    # Signed with a key the peer really holds, but claiming to speak for another member.
    env, _ = seal(header(signer=OTHER), b"x", signer)
    with pytest.raises(SignatureInvalid, match=f"names signer {OTHER}, peer is {MEMBER}"):
        open_wire(env, MEMBER, lookup_for(key))


def test_an_envelope_without_a_signature_is_malformed(key: Any, signer: Signer) -> None:
    env, _ = seal(header(), b"x", signer)
    env.ClearField("signature")
    with pytest.raises(MessageMalformed, match="without header or signature"):
        open_wire(env, MEMBER, lookup_for(key))


def test_an_envelope_with_an_empty_signature_value_is_malformed(key: Any, signer: Signer) -> None:
    env, _ = seal(header(), b"x", signer)
    env.signature.value = b""
    with pytest.raises(MessageMalformed):
        open_wire(env, MEMBER, lookup_for(key))


def test_an_envelope_without_a_header_is_malformed(key: Any, signer: Signer) -> None:
    env, _ = seal(header(), b"x", signer)
    env.header = b""
    with pytest.raises(MessageMalformed):
        open_wire(env, MEMBER, lookup_for(key))


@pytest.mark.parametrize("algorithm", [pb.SIGNATURE_ALGORITHM_UNSPECIFIED, 99])
def test_an_unknown_signature_algorithm_is_malformed(key: Any, signer: Signer, algorithm: int) -> None:
    env, _ = seal(header(), b"x", signer)
    env.signature.algorithm = algorithm  # type: ignore[assignment]
    with pytest.raises(MessageMalformed, match="unknown algorithm"):
        open_wire(env, MEMBER, lookup_for(key))


def test_a_signed_header_that_does_not_parse_is_malformed(key: Any, signer: Signer) -> None:
    garbage = b"\xff\xff\xff"
    env = pb.Envelope(
        header=garbage,
        body=b"",
        signature=pb.Signature(algorithm=env_algorithm(signer), key_id=KEY_ID, value=signer.sign(garbage)),
    )
    with pytest.raises(MessageMalformed, match="does not parse"):
        open_wire(env, MEMBER, lookup_for(key))


def test_a_signed_header_with_an_unknown_kind_is_malformed(key: Any, signer: Signer) -> None:
    raw = pb.Header(message_id="m-9", kind=0, signer=MEMBER).SerializeToString()  # type: ignore[arg-type]
    env = pb.Envelope(
        header=raw,
        body=b"",
        signature=pb.Signature(algorithm=env_algorithm(signer), key_id=KEY_ID, value=signer.sign(raw)),
    )
    with pytest.raises(MessageMalformed, match="unknown kind 0"):
        open_wire(env, MEMBER, lookup_for(key))


def env_algorithm(signer: Signer) -> Any:
    return pb.SIGNATURE_ALGORITHM_ES256 if signer.algorithm == "ES256" else pb.SIGNATURE_ALGORITHM_EDDSA
