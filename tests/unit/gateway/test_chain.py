"""Hash-chained stream frames: an ordered chain is accepted; drops, reorders, injections and replays are not."""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

import pytest

from crossway.core.errors import StreamBroken
from crossway.security.keys import generate_signing_key
from crossway.security.signing import Signer
from gateway.wire.chain import ChainReader, ChainWriter
from gateway.wire.codec import seal_frame
from gateway.wire.frames import Envelope, FrameKind, Header

MEMBER = "EE/GOV/70000001"
KEY_ID = "ab" * 32
# The response chain starts from the request's header hash; any 32 bytes stand in for it here.
START = hashlib.sha256(b"request header").digest()


@pytest.fixture(scope="module")
def key() -> Any:
    return generate_signing_key()


@pytest.fixture
def signer(key: Any) -> Signer:
    return Signer(key, key_id=KEY_ID)


def lookup_for(key: Any) -> Any:
    return lambda member, key_id: key.public_key() if (member, key_id) == (MEMBER, KEY_ID) else None


def writer(signer: Signer, message_id: str = "m-1") -> ChainWriter:
    return ChainWriter(signer, Header(message_id=message_id, kind=FrameKind.STREAM_DATA, signer=MEMBER), START, 1)


def reader(key: Any, message_id: str = "m-1") -> ChainReader:
    return ChainReader(MEMBER, lookup_for(key), message_id, START, 1)


def frames(signer: Signer, n: int, message_id: str = "m-1") -> list[Envelope]:
    w = writer(signer, message_id)
    return [w.data(f"frame {i}".encode())[0] for i in range(n)]


def test_an_ordered_chain_is_accepted_frame_by_frame(key: Any, signer: Signer) -> None:
    r = reader(key)
    envs = frames(signer, 4)
    accepted = [r.accept(env) for env in envs]
    assert [f.body for f in accepted] == [b"frame 0", b"frame 1", b"frame 2", b"frame 3"]
    assert [f.header.sequence for f in accepted] == [1, 2, 3, 4]
    assert accepted[0].header.previous_hash == START
    for before, after in itertools.pairwise(accepted):
        assert after.header.previous_hash == before.header_hash
    assert r.last_hash == accepted[-1].header_hash


def test_the_writer_numbers_and_links_what_it_seals(signer: Signer) -> None:
    w = writer(signer)
    _, first = w.data(b"a")
    _, second = w.seal(Header(message_id="m-1", kind=FrameKind.STREAM_END, signer=MEMBER), b"")
    assert (first.header.sequence, second.header.sequence) == (1, 2)
    assert (first.header.previous_hash, second.header.previous_hash) == (START, first.header_hash)
    assert second.header.kind is FrameKind.STREAM_END


def test_a_dropped_frame_breaks_the_stream(key: Any, signer: Signer) -> None:
    r = reader(key)
    envs = frames(signer, 3)
    r.accept(envs[0])
    with pytest.raises(StreamBroken, match="expected frame 2, got 3"):
        r.accept(envs[2])


def test_a_reordered_pair_breaks_the_stream(key: Any, signer: Signer) -> None:
    r = reader(key)
    envs = frames(signer, 2)
    with pytest.raises(StreamBroken, match="expected frame 1, got 2"):
        r.accept(envs[1])


def test_a_frame_from_another_message_breaks_the_stream_even_at_the_right_position(key: Any, signer: Signer) -> None:
    r = reader(key)
    mine = frames(signer, 2)
    theirs = frames(signer, 2, message_id="m-2")  # same signer, same start hash, same sequence
    r.accept(mine[0])
    with pytest.raises(StreamBroken, match="frame of message m-2 injected into stream m-1"):
        r.accept(theirs[1])


def test_a_replayed_frame_breaks_the_stream(key: Any, signer: Signer) -> None:
    r = reader(key)
    envs = frames(signer, 2)
    r.accept(envs[0])
    with pytest.raises(StreamBroken):
        r.accept(envs[0])


def test_a_frame_at_the_right_position_with_a_wrong_previous_hash_breaks_the_stream(key: Any, signer: Signer) -> None:
    r = reader(key)
    env, _ = seal_frame(
        Header(message_id="m-1", kind=FrameKind.STREAM_DATA, signer=MEMBER, sequence=1, previous_hash=b"\0" * 32),
        b"forged",
        signer,
    )
    with pytest.raises(StreamBroken, match="expected frame 1, got 1 with a broken chain"):
        r.accept(env)


def test_a_rejected_frame_does_not_advance_the_reader(key: Any, signer: Signer) -> None:
    r = reader(key)
    envs = frames(signer, 2)
    with pytest.raises(StreamBroken):
        r.accept(envs[1])
    assert r.last_hash == START
    assert r.accept(envs[0]).header.sequence == 1
    assert r.accept(envs[1]).header.sequence == 2
