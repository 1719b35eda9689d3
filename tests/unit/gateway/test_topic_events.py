"""Topic events as signed frames: a subscriber's minimized copy, and the completeness of a range."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from crossway.core.errors import MessageTampered
from crossway.security.keys import generate_signing_key
from crossway.security.signing import Signer
from gateway.topics import verify_range
from gateway.topics.errors import RangeIncomplete
from gateway.topics.event import open_received, seal_copy, seal_event
from gateway.wire.codec import open_envelope
from gateway.wire.frames import Envelope

MEMBER = "EE/GOV/70000002"
PUBLISHER = f"{MEMBER}/population"
TOPIC = f"{PUBLISHER}/address-changes"
KEY_ID = "cd" * 32


@pytest.fixture(scope="module")
def key() -> Any:
    return generate_signing_key("ES256")


def _lookup(key: Any) -> Any:
    return lambda who, kid: key.public_key() if (who, kid) == (MEMBER, KEY_ID) else None


def _chain(key: Any, count: int) -> list[tuple[Envelope, Envelope | None]]:
    signer = Signer(key, key_id=KEY_ID)
    out: list[tuple[Envelope, Envelope | None]] = []
    previous = b""
    for n in range(1, count + 1):
        env, frame = seal_event(
            signer,
            MEMBER,
            publisher=PUBLISHER,
            topic=TOPIC,
            event_type="population.v1.AddressChanged",
            sequence=n,
            previous_hash=previous,
            key=f"k{n % 2}",
            key_sequence=(n + 1) // 2,
            published_at_ms=1_000 + n,
            expires_at_ms=10_000_000,
            payload=f"event {n}".encode(),
        )
        previous = frame.header_hash
        out.append((env, None))
    return out


def test_a_complete_range_verifies_in_order(key: Any) -> None:
    events = verify_range(_chain(key, 5), TOPIC, MEMBER, _lookup(key))
    assert [e.sequence for e in events] == [1, 2, 3, 4, 5]
    assert events[2].payload == b"event 3" and events[2].event.header.event_key == "k1"


def test_a_range_with_one_event_left_out_is_detected(key: Any) -> None:
    chain = _chain(key, 5)
    with pytest.raises(RangeIncomplete, match=r"events 3\.\.3 are missing"):
        verify_range(chain[:2] + chain[3:], TOPIC, MEMBER, _lookup(key))


def test_a_range_cut_short_at_either_end_is_detected_against_the_range_asked_for(key: Any) -> None:
    chain = _chain(key, 5)
    assert len(verify_range(chain, TOPIC, MEMBER, _lookup(key), first=1, last=5)) == 5
    with pytest.raises(RangeIncomplete, match="ends at event 5, the one shown at event 4"):
        verify_range(chain[:-1], TOPIC, MEMBER, _lookup(key), first=1, last=5)
    with pytest.raises(RangeIncomplete, match="starts at event 1, the one shown at 2"):
        verify_range(chain[1:], TOPIC, MEMBER, _lookup(key), first=1, last=5)
    with pytest.raises(RangeIncomplete, match="the one shown at no event"):
        verify_range([], TOPIC, MEMBER, _lookup(key), first=1, last=5)


def test_two_events_swapped_or_one_altered_are_detected(key: Any) -> None:
    chain = _chain(key, 4)
    with pytest.raises(RangeIncomplete):
        verify_range([chain[0], chain[2], chain[1], chain[3]], TOPIC, MEMBER, _lookup(key))
    env, _ = chain[2]
    altered = dataclasses.replace(env, body=b"another address")
    with pytest.raises(RangeIncomplete, match="does not verify"):
        verify_range([chain[0], chain[1], (altered, None), chain[3]], TOPIC, MEMBER, _lookup(key))


def test_a_range_of_another_topic_is_refused(key: Any) -> None:
    with pytest.raises(RangeIncomplete, match="not"):
        verify_range(_chain(key, 2), f"{TOPIC}-other", MEMBER, _lookup(key))


def test_a_minimized_copy_is_bound_to_its_event_and_hides_the_withheld_body(key: Any) -> None:
    signer = Signer(key, key_id=KEY_ID)
    env, _ = _chain(key, 1)[0]
    frame = open_envelope(env, MEMBER, _lookup(key))
    copy = seal_copy(signer, MEMBER, frame, "EE/GOV/70000003/business", b"minimized", ("family_name",), 5_000)
    shown = dataclasses.replace(env, body=b"")  # the subscriber never gets the full body
    received = open_received(shown, copy, MEMBER, _lookup(key))
    assert received.payload == b"minimized" and received.withheld == ("family_name",)
    other, _ = _chain(key, 2)[1]
    with pytest.raises(MessageTampered, match="not bound"):
        open_received(dataclasses.replace(other, body=b""), copy, MEMBER, _lookup(key))


@pytest.mark.parametrize("granted", [None, (), ("address", "national_id")])
def test_a_deliverys_granted_fields_survive_its_state_round_trip(granted: tuple[str, ...] | None) -> None:
    from gateway.delivery.state import MessageState

    state = MessageState("out", PUBLISHER, "address-changes.1.abc", "EE/GOV/70000003/business", "t", 1, 2, 3)
    again = MessageState.from_json(dataclasses.replace(state, granted_fields=granted).to_json())
    assert again.granted_fields == granted  # None (every field) stays apart from () (none)
