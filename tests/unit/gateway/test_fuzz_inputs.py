"""Fuzzing what outsiders control (issue 13): no input crashes a gateway, every answer is coded.

Three surfaces, each through the real decoding and the real pipelines (the in-process pair:
real keys, signatures, Cedar and audit records; no sockets):

- the peer port's envelopes — arbitrary bytes, and mutations of a validly signed request;
- the peer port's Multiplex batches — arbitrary bytes, and batches of mutated envelopes;
- the client port's metadata — arbitrary keys and values around a valid caller's.

"Coded" means: a decoded, signed answer, or a ``CrosswayError`` whose code is in the error tree
(what the ports send as ``crossway-error``). Anything else — an IndexError, a UnicodeError, a
hang — is a finding. Bounded for CI: derandomized (the same examples every run), a fixed number
of examples per surface, no per-example deadline (the shared CI cores are slow).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossway.core.errors import CrosswayError
from crossway.core.errors.codes import _all_subclasses
from crossway.demo.federation import POPULATION_SERVICE, TAX_SUBSYSTEM
from crossway.demo.inprocess import InProcessPair
from gateway.ports import outgoing_call
from gateway.shared import Limits
from gateway.wire.codec import decode_envelope, envelope_to_pb, seal_frame
from gateway.wire.frames import FrameKind, Header
from gateway.wire.multiplex import decode_mux_requests, serve_multiplex
from protos.crossway.v1 import envelope_pb2 as pb
from protos.crossway.v1 import peer_pb2 as mux_pb
from protos.demo.population.v1 import population_pb2 as population

FUZZ = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

CODES = {cls.code for cls in _all_subclasses(CrosswayError)}


class _Surface:
    """One in-process pair and one event loop for a whole fuzz run (examples run one by one)."""

    def __init__(self, workdir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.pair = InProcessPair.build(workdir, limits=Limits(max_message_bytes=64 * 1024))
        keys = self.pair.federation.tax.directory / "keys"
        self.auth = {"x509_pem_cert": [(keys / "tls.crt").read_bytes()]}

    def run(self, coroutine: object) -> object:
        return self.loop.run_until_complete(asyncio.wait_for(coroutine, 10))  # type: ignore[arg-type]

    def valid_request(self) -> bytes:
        """A validly signed GetPerson request of the tax board, as the peer port receives it."""
        import time
        import uuid

        from crossway.demo.inprocess import _signer

        now = int(time.time() * 1000)
        header = Header(
            message_id=uuid.uuid4().hex,
            kind=FrameKind.REQUEST,
            client=str(TAX_SUBSYSTEM),
            service=str(POPULATION_SERVICE),
            method="GetPerson",
            issued_at_ms=now,
            deadline_ms=now + 10_000,
            signer=str(self.pair.federation.tax.member),
        )
        body = population.GetPersonRequest(national_id="38001010001").SerializeToString()
        env, _ = seal_frame(header, body, _signer(self.pair.federation.tax))
        return envelope_to_pb(env).SerializeToString()

    def close(self) -> None:
        self.loop.run_until_complete(self.pair.aclose())
        self.loop.close()


@pytest.fixture(scope="module")
def surface(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Surface]:
    built = _Surface(tmp_path_factory.mktemp("fuzz"))
    yield built
    built.close()


def _coded(error: BaseException) -> None:
    assert isinstance(error, CrosswayError), f"uncoded {type(error).__name__}: {error}"
    assert error.code in CODES and error.message and error.hint


def _answered(raw_response: bytes) -> None:
    """A signed answer: its header parses and, when refused, carries a known code."""
    header = pb.Header.FromString(pb.Envelope.FromString(raw_response).header)
    assert header.kind == pb.MESSAGE_KIND_RESPONSE
    if header.status.error_code:
        assert header.status.error_code in CODES


async def _provide(surface: _Surface, data: bytes) -> bytes | None:
    """What the peer port's Call does with ``data``; the serialized answer, or None if refused."""
    try:
        env = decode_envelope(data)
    except CrosswayError as exc:
        _coded(await surface.pair.provider.refuse(exc, surface.auth))
        return None
    try:
        answer = await surface.pair.provider.call(env, surface.auth)
    except CrosswayError as exc:
        _coded(exc)
        return None
    return envelope_to_pb(answer).SerializeToString()


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    out = bytearray(data)
    for position, value in edits:
        out[position % len(out)] = value
    return bytes(out[:cut] if cut is not None else out)


# -- the peer port: envelopes --------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=4096))
def test_arbitrary_bytes_as_an_envelope_are_answered_with_a_code(surface: _Surface, data: bytes) -> None:
    answer = surface.run(_provide(surface, data))
    if answer is not None:
        _answered(answer)  # type: ignore[arg-type]


@FUZZ
@given(
    edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=6),
    cut=st.none() | st.integers(min_value=0, max_value=400),
)
def test_a_signed_request_changed_anywhere_is_answered_with_a_code(
    surface: _Surface, edits: list[tuple[int, int]], cut: int | None
) -> None:
    valid = surface.valid_request()
    changed = _mutate(valid, edits, cut)
    answer = surface.run(_provide(surface, changed))
    if answer is not None:
        _answered(answer)  # type: ignore[arg-type]


@FUZZ
@given(
    header=st.binary(max_size=512),
    body=st.binary(max_size=256),
    algorithm=st.integers(min_value=-5, max_value=2**31 - 1),
    key_id=st.text(max_size=80),
    signature=st.binary(max_size=128),
)
def test_envelopes_with_random_fields_are_answered_with_a_code(
    surface: _Surface, header: bytes, body: bytes, algorithm: int, key_id: str, signature: bytes
) -> None:
    env = pb.Envelope(header=header, body=body)
    env.signature.algorithm = algorithm  # type: ignore[assignment]
    env.signature.key_id = key_id
    env.signature.value = signature
    answer = surface.run(_provide(surface, env.SerializeToString()))
    assert answer is None  # nothing unsigned by the tax board's key can be accepted


# -- the peer port: Multiplex batches --------------------------------------------------------------


async def _serve_batches(surface: _Surface, batches: list[bytes]) -> list[mux_pb.MuxReply]:
    async def decoded() -> AsyncIterator[mux_pb.MuxRequests]:
        for raw in batches:
            yield decode_mux_requests(raw)

    replies: list[mux_pb.MuxReply] = []
    try:
        async for batch in serve_multiplex(decoded(), surface.auth, surface.pair.provider.call):
            replies.extend(batch.replies)
    except CrosswayError as exc:
        _coded(exc)  # the stream ends with the code (a batch that does not decode)
    return replies


@FUZZ
@given(batches=st.lists(st.binary(max_size=1024), min_size=1, max_size=3))
def test_arbitrary_bytes_as_multiplex_batches_end_with_a_code_or_coded_answers(
    surface: _Surface, batches: list[bytes]
) -> None:
    for reply in surface.run(_serve_batches(surface, batches)):  # type: ignore[attr-defined]
        if reply.HasField("refusal"):
            assert reply.refusal.error_code in CODES and reply.refusal.hint
        else:
            _answered(reply.response.SerializeToString())


@FUZZ
@given(
    mutations=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=2**32),
            st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=3),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_every_tag_of_a_batch_of_changed_requests_gets_a_coded_answer(
    surface: _Surface, mutations: list[tuple[int, list[tuple[int, int]]]]
) -> None:
    requests = []
    for tag, edits in mutations:
        changed = _mutate(surface.valid_request(), edits, None)
        try:
            envelope = pb.Envelope.FromString(changed)
        except DecodeError:  # inside a batch an envelope is always one; its header bytes need not be
            envelope = pb.Envelope(header=changed, signature=pb.Signature(value=b"x"))
        requests.append(mux_pb.MuxRequest(tag=tag, envelope=envelope))
    batch = mux_pb.MuxRequests(requests=requests).SerializeToString()
    replies = surface.run(_serve_batches(surface, [batch]))
    assert sorted(r.tag for r in replies) == sorted(tag for tag, _ in mutations)  # type: ignore[attr-defined]
    for reply in replies:  # type: ignore[attr-defined]
        if reply.HasField("refusal"):
            assert reply.refusal.error_code in CODES
        else:
            _answered(reply.response.SerializeToString())


# -- the client port: metadata ---------------------------------------------------------------------

_KEYS = st.one_of(
    st.sampled_from(
        [
            "crossway-service",
            "crossway-user-id",
            "crossway-purpose",
            "crossway-user-token",
            "crossway-purpse",
            "authorization",
            "traceparent",
            "tracestate",
            "baggage",
            "x-trace-bin",
        ]
    ),
    st.from_regex(r"[a-z0-9\-_.]{1,40}", fullmatch=True),
)
_VALUES = st.one_of(st.text(max_size=300), st.binary(max_size=64))


@FUZZ
@given(extra=st.lists(st.tuples(_KEYS, _VALUES), max_size=80))
def test_any_metadata_next_to_a_valid_callers_gets_an_answer_or_a_code(
    surface: _Surface, extra: list[tuple[str, object]]
) -> None:
    pair = surface.pair
    token = ("authorization", f"Bearer {pair.federation.token()}")
    metadata = [token, *extra] if all(k != "authorization" for k, _ in extra) else [*extra, token]
    call = outgoing_call("/population.v1.PersonRegistry/GetPerson", metadata, None, 5.0, Limits())
    request = population.GetPersonRequest(national_id="38001010001").SerializeToString()
    try:
        answer = surface.run(pair.client.unary(call, request))
    except BaseException as exc:
        _coded(exc)
    else:
        assert population.Person.FromString(answer).national_id == "38001010001"  # type: ignore[arg-type]
