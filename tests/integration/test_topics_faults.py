"""Topics when things go wrong: a subscriber's gateway away for 30 s or killed -9 while pushing, the
publisher's gateway killed -9 under publishers retrying with idempotency keys, a permit withdrawn
mid-stream, a replayed range with an event left out, and the ``crossway topic`` CLI as a subprocess.

Real gateways over real mTLS and a real NATS (see topics_support); each subscriber is used by one
scenario so the scenarios do not disturb one another.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from delivery_support import Mail, indexed_and_cosigned, restart_gateway
from peer_client import PeerClient
from topics_support import (
    BUSINESS_SUB,
    PUBLISHER,
    SOCIAL_SUB,
    TAX_SUB,
    TOPIC,
    TopicClient,
    address_change,
    clients,
    topics_federation,
    write_policies,
)

from audit.index.delivery_evidence import verify_delivery_evidence
from audit.trail import registry_witness_name
from crossway.core.ids import MemberId
from crossway.demo.federation import Agency, Federation
from crossway.security.tokens import mint_token
from gateway.delivery.message import delivery_key
from gateway.topics import verify_range
from gateway.topics.errors import RangeIncomplete
from gateway.topics.event import copy_message_id, seal_event
from gateway.topics.peerlink import signed_event_pb
from gateway.wire.codec import envelope_from_pb
from gateway.wire.metadata import metadata_text
from protos.crossway.v1 import topics_pb2 as tpb
from protos.demo.population.v1 import population_pb2 as population_pb
from registry import load_anchor
from registry.configuration import verify_configuration

pytestmark = pytest.mark.asyncio(loop_scope="module")

NAME = TOPIC.rpartition("/")[2]


def _code(exc: grpc.aio.AioRpcError) -> str:
    return metadata_text(exc.trailing_metadata()).get("crossway-error", "")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    workdir: Path = tmp_path_factory.mktemp("topics-faults")
    async with topics_federation(workdir) as federation:
        yield federation


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sides(fed: Federation) -> AsyncIterator[dict[str, TopicClient]]:
    made = clients(fed)
    yield made
    for client in made.values():
        await client.close()


async def _publish(sides: dict[str, TopicClient], count: int, tag: str) -> list[int]:
    return [
        (await sides["publisher"].publish(address_change(f"3900101{n % 7:04d}", f"{tag} {n}", n))).sequence
        for n in range(count)
    ]


@pytest.mark.timeout(400)
async def test_a_subscriber_gateway_down_for_30_s_catches_up_in_order_without_gap_or_duplicate(
    fed: Federation, sides: dict[str, TopicClient]
) -> None:
    sub = await sides["tax"].subscribe("taxation")
    first = await _publish(sides, 10, "before")
    got = await sides["tax"].drain(sub.subscription_id, 10)
    assert [e.sequence for e in got] == first
    # the tax board's gateway is killed; events are published while it is away for 30 s
    await sides["tax"].close()
    down = asyncio.create_task(restart_gateway(fed, fed.tax, kill=True, down_s=30))
    await asyncio.sleep(1)
    during = await _publish(sides, 40, "during")
    await down
    sides["tax"] = TopicClient(fed, fed.tax, TAX_SUB)
    later = await sides["tax"].drain(sub.subscription_id, 40, deadline_s=240)
    assert [e.sequence for e in later] == during  # in order, none missing, none twice
    status = await sides["publisher"].status()
    row = next(r for r in status.subscribers if r.subscriber == str(TAX_SUB))
    assert row.failures > 0  # the relays while it was away were retried, and counted


async def test_a_withdrawn_permit_stops_delivery_at_that_policy_version_with_evidence_on_both_sides(
    fed: Federation, sides: dict[str, TopicClient]
) -> None:
    sub = await sides["social"].subscribe("benefits")
    before = await _publish(sides, 10, "permitted")
    assert [e.sequence for e in await sides["social"].drain(sub.subscription_id, 10)] == before
    write_policies(fed, "tax", "business")  # the social insurance board's permit is withdrawn
    after = await _publish(sides, 10, "withdrawn")
    await asyncio.sleep(1.5)  # the policies are looked at again within a second
    after += await _publish(sides, 10, "still withdrawn")
    row = None
    for _ in range(60):
        status = await sides["publisher"].status()
        row = next(r for r in status.subscribers if r.subscriber == str(SOCIAL_SUB))
        if row.state == "refused":
            break
        await asyncio.sleep(0.5)
    assert row is not None and row.state == "refused" and row.refusals == 1, row
    assert "policy.denied" in row.refusal and "no permit matched" in row.refusal
    stopped_at = row.relayed + 1
    assert after[0] <= stopped_at <= after[-1]
    # nothing from the refused event on reaches the subscriber; nothing before it is missing
    received = await sides["social"].drain(sub.subscription_id, 100, deadline_s=4)
    assert [e.sequence for e in received] == list(range(before[-1] + 1, stopped_at))
    # the refusal is signed evidence, held by both gateways (each side asks its own)
    message_id = copy_message_id(NAME, stopped_at, sub.subscription_id)
    publisher_mail = Mail(fed, fed.population, PUBLISHER)
    social_mail = Mail(fed, fed.extra[1], SOCIAL_SUB)
    try:
        for _ in range(40):
            theirs = await social_mail.timeline(str(PUBLISHER), message_id)
            if theirs:
                break
            await asyncio.sleep(0.25)
        ours = await publisher_mail.timeline(str(PUBLISHER), message_id)
    finally:
        await publisher_mail.close()
        await social_mail.close()
    assert [e.event.event for e in ours] == ["RelayRejection"]
    assert [e.data for e in theirs] == [e.data for e in ours]  # the same signed bytes on both sides
    assert ours[0].event.reason_code == "policy.denied"
    # the subscription stays stopped even once permitted again: the gap would be invisible otherwise
    write_policies(fed, "tax", "business", "social")
    await asyncio.sleep(1.5)
    await _publish(sides, 3, "permitted again")
    assert await sides["social"].receive(sub.subscription_id, wait_ms=1500) == []


async def test_a_push_subscription_hands_each_event_in_order_to_the_subscribers_backend(
    fed: Federation, sides: dict[str, TopicClient]
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sides["tax"].subscribe("taxation", push=True)  # no [[delivery.push]] for the tax board
    assert _code(caught.value) == "subscription.no_push_target"
    sub = await sides["business"].subscribe("pushed-upkeep", push=True)
    assert sub.push
    published = [
        (await sides["publisher"].publish(address_change("38001010001", f"pushed {n}", n))).sequence for n in range(5)
    ]
    suffix = f".{sub.subscription_id}"
    pushed: list[int] = []
    for _ in range(120):
        lines = [json.loads(line) for line in fed.calls_log.read_text().splitlines() if suffix in line]
        pushed = _pushed(fed, sub.subscription_id)
        if len(pushed) >= len(published):
            break
        await asyncio.sleep(0.25)
    assert pushed == published  # each once, in order
    assert all(line["crossway-client"] == str(PUBLISHER) for line in lines)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sides["business"].receive(sub.subscription_id)
    assert _code(caught.value) == "subscription.pushed"
    for _ in range(40):
        status = await sides["publisher"].status()
        row = next(r for r in status.subscribers if r.subscription_id == sub.subscription_id)
        if row.handed_over == published[-1]:
            break
        await asyncio.sleep(0.25)
    assert row.handed_over == published[-1]  # the push was the handover, evidence back at the publisher


def _pushed(fed: Federation, subscription_id: str) -> list[int]:
    """The sequences the backend was handed for one subscription, in the order it got them."""
    suffix = f".{subscription_id}"
    lines = [json.loads(line) for line in fed.calls_log.read_text().splitlines() if suffix in line]
    return [int(line["crossway-message-id"].split(".")[-2]) for line in lines]


@pytest.mark.timeout(400)
async def test_push_goes_on_in_order_after_the_subscribers_gateway_is_killed_mid_run(
    fed: Federation, sides: dict[str, TopicClient]
) -> None:
    business = fed.extra[0]
    sub = await sides["business"].subscribe("pushed-upkeep", push=True)  # the same subscription as above
    earlier = len(_pushed(fed, sub.subscription_id))

    # a person the backend knows (it answers NOT_FOUND otherwise, and the push is retried)
    async def publish() -> list[int]:
        people = ("38001010001", "39002020002", "48503030003")
        return [
            (await sides["publisher"].publish(address_change(people[n % 3], f"through a kill {n}", n))).sequence
            for n in range(40)
        ]

    publishing = asyncio.create_task(publish())
    deadline = time.monotonic() + 120
    while len(_pushed(fed, sub.subscription_id)) < earlier + 3:
        assert time.monotonic() < deadline and not publishing.done(), "nothing pushed"
        await asyncio.sleep(0.05)
    await sides["business"].close()
    await restart_gateway(fed, business, kill=True, down_s=3)  # SIGKILL while pushing, publishing going on
    sides["business"] = TopicClient(fed, business, BUSINESS_SUB)
    published = await publishing
    seen: list[int] = []
    deadline = time.monotonic() + 240
    while not set(published) <= set(seen):
        assert time.monotonic() < deadline, f"pushed {len(set(seen))} of {len(published)}"
        await asyncio.sleep(0.25)
        seen = _pushed(fed, sub.subscription_id)[earlier:]
    again = len(seen) - len(set(seen))
    print(f"push through a kill -9: {len(published)} events, {len(set(seen))} pushed, {again} pushed twice")
    assert list(dict.fromkeys(seen)) == published  # every event, in order, none missing
    # At most the one event in flight when the gateway died is pushed again, under the same
    # crossway-message-id (the backend's idempotency key).
    assert again <= 1
    for _ in range(80):
        row = next(
            r for r in (await sides["publisher"].status()).subscribers if r.subscription_id == sub.subscription_id
        )
        if row.handed_over == published[-1]:
            break
        await asyncio.sleep(0.25)
    assert row.handed_over == published[-1]


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
async def test_a_replayed_range_with_one_event_left_out_is_detected(
    fed: Federation, sides: dict[str, TopicClient], tmp_path: Path
) -> None:
    sub = await sides["business"].subscribe("registry-upkeep")
    published = await _publish(sides, 8, "replayed")
    await sides["business"].drain(sub.subscription_id, 8)
    proof = await sides["business"].replay(sub.subscription_id, published[0], published[-1])
    assert fed.registry is not None and fed.authority is not None
    config = verify_configuration(await fed.registry.publisher.publish_now(), fed.authority.anchor, 0)
    member = str(PUBLISHER.member)
    pairs = [
        (envelope_from_pb(e.event), envelope_from_pb(e.copy) if e.HasField("copy") else None) for e in proof.events
    ]

    def lookup(signer: str, key_id: str) -> object:
        return config.signing_key(MemberId.parse(signer), key_id)

    verified = verify_range(pairs, TOPIC, member, lookup, first=published[0], last=published[-1])
    assert [r.sequence for r in verified] == published
    assert all(r.withheld for r in verified)  # minimized copies, bound to the signed events
    gapped = pairs[:3] + pairs[4:]
    with pytest.raises(RangeIncomplete, match="missing"):
        verify_range(gapped, TOPIC, member, lookup)
    swapped = [pairs[0], pairs[2], pairs[1], *pairs[3:]]
    with pytest.raises(RangeIncomplete):
        verify_range(swapped, TOPIC, member, lookup)
    with pytest.raises(RangeIncomplete, match="ends at"):  # the last event held back
        verify_range(pairs[:-1], TOPIC, member, lookup, first=published[0], last=published[-1])
    # The Merkle log's part: each event of the complete range was delivered under evidence that is
    # in both gateways' cosigned logs — the auditor's bundle (the real CLI) proves every record's
    # inclusion, and its SubmissionAcceptance names exactly this event's signed header.
    await asyncio.sleep(1.5)  # the publisher logs the subscriber's ContentHandover when it arrives
    index = str(tmp_path / "audit.sqlite")
    await indexed_and_cosigned(fed, index)
    anchor = fed.workdir / "registry" / "anchor.json"
    loaded = load_anchor(anchor)
    witnesses = {registry_witness_name(loaded.instance): loaded.public_key}
    for received in verified:
        message = delivery_key(str(PUBLISHER), copy_message_id(NAME, received.sequence, sub.subscription_id))
        bundle = tmp_path / f"event-{received.sequence}.json"
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "crossway.cli", "audit", "evidence", message, "--index", index,
            "--anchor", str(anchor), "-o", str(bundle), stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        report = verify_delivery_evidence(bundle.read_bytes(), witnesses)
        names = [e.event.event for e in report.events]
        assert names[:2] == ["SubmissionAcceptance", "RelayAcceptance"], names
        assert report.events[0].event.message_hash == received.event.header_hash.hex()


async def _cli(fed: Federation, agency: Agency, subject: str, *args: str) -> tuple[int, str, str]:
    profile = fed.workdir / f"profile-{agency.member.code}-{subject.rpartition('/')[2]}"
    profile.mkdir(exist_ok=True)
    (profile / "client.port").write_text(str(agency.client_port))
    (profile / "ca.pem").write_bytes(fed.ca_pem)
    token = mint_token(
        fed.idp_key, subject=subject, issuer="https://idp.tax.example", audience=f"crossway:{agency.gateway}", ttl_s=300
    )
    (profile / "token.jwt").write_text(token)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "crossway.cli",
        "topic",
        "--profile",
        str(profile),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return int(process.returncode or 0), out.decode(), err.decode()


async def test_the_topic_cli_publishes_subscribes_receives_and_shows_the_status(fed: Federation) -> None:
    business = fed.extra[0]
    code, out, err = await _cli(fed, business, str(BUSINESS_SUB), "subscribe", TOPIC, "--purpose", "cli")
    assert code == 0, err
    sub_id = out.split()[1]
    event = fed.workdir / "event.bin"
    event.write_bytes(address_change("38001019999", "Narva mnt 5"))
    code, out, err = await _cli(fed, fed.population, str(PUBLISHER), "publish", TOPIC, "--file", str(event))
    assert code == 0 and "published" in out and "key 38001019999" in out, err
    sequence = int(out.split("#")[1].split()[0])
    code, out, err = await _cli(fed, business, str(BUSINESS_SUB), "receive", sub_id, "--wait-ms", "8000")
    assert code == 0, err
    assert f"#{sequence} key 38001019999" in out and "withheld=effective_on,family_name,previous_address" in out
    assert f"handed over up to #{sequence}" in out
    code, out, err = await _cli(fed, fed.population, str(PUBLISHER), "status", TOPIC)
    assert code == 0 and str(BUSINESS_SUB) in out, err
    # a refusal is the gateway's stable code and hint, exit code 1
    code, out, err = await _cli(fed, business, str(BUSINESS_SUB), "status", TOPIC)
    assert code == 1 and "error[topic.not_owner]" in err and "hint:" in err


async def test_the_subscriber_gateway_refuses_a_skipped_or_unchained_event_even_from_the_publishers_gateway(
    fed: Federation, sides: dict[str, TopicClient]
) -> None:
    business = fed.extra[0]
    sub = await sides["business"].subscribe("gap-check")
    published = [
        (await sides["publisher"].publish(address_change("38001010002", f"gap {n}", n))).sequence for n in range(2)
    ]
    assert [e.sequence for e in await sides["business"].drain(sub.subscription_id, 2)] == published
    # The publisher's own gateway identity and signing key, driven by hand.
    peer = PeerClient.from_gateway_keys(
        fed.population.directory / "keys", f"127.0.0.1:{business.peer_port}", fed.ca_pem, str(PUBLISHER.member)
    )

    def forged(sequence: int, previous: bytes) -> tpb.PeerDeliver:
        env, _ = seal_event(
            peer.signer, peer.member, publisher=str(PUBLISHER), topic=TOPIC, event_type="population.v1.AddressChanged",
            sequence=sequence, previous_hash=previous, key="38001010002", key_sequence=99,
            published_at_ms=int(time.time() * 1000), expires_at_ms=int(time.time() * 1000) + 600_000,
            payload=address_change("38001010002", "forged"),
        )  # fmt: skip
        return tpb.PeerDeliver(subscription_id=sub.subscription_id, event=signed_event_pb(env, None))

    async with peer.channel() as channel:
        deliver = channel.unary_unary(
            "/crossway.v1.PeerTopics/Deliver",
            request_serializer=tpb.PeerDeliver.SerializeToString,
            response_deserializer=tpb.PeerDeliverReply.FromString,
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:  # one event skipped
            await deliver(forged(published[-1] + 2, b"\0" * 32), timeout=10)
        assert _code(caught.value) == "topic.gap"
        with pytest.raises(grpc.aio.AioRpcError) as caught:  # the right number, not chained to the last
            await deliver(forged(published[-1] + 1, b"\0" * 32), timeout=10)
        assert _code(caught.value) == "message.tampered"
    # nothing of it was accepted: the genuine next event still arrives, in its place
    genuine = (await sides["publisher"].publish(address_change("38001010002", "genuine"))).sequence
    got = await sides["business"].drain(sub.subscription_id, 1)
    assert [e.sequence for e in got] == [genuine] and genuine == published[-1] + 1


@pytest.mark.timeout(400)
async def test_publishes_retried_with_their_keys_through_a_publisher_kill_are_stored_once_each(
    fed: Federation, sides: dict[str, TopicClient]
) -> None:
    # 8 publishing systems, each retrying every failed Publish with the same idempotency key, while
    # the publisher's gateway is killed -9 mid-run: answers lost after the event was stored and
    # events never stored must both end as exactly one event per key.
    sub = await sides["tax"].subscribe("taxation")  # the tax board's subscription of the first test
    people = ("38001010001", "39002020002", "48503030003")
    answered: dict[str, int] = {}
    retries = duplicates = 0
    running = asyncio.Event()  # set once 20 events are in: the kill falls mid-run

    async def system(w: int) -> None:
        nonlocal retries, duplicates
        for i in range(15):
            key = f"kill-{w}-{i}"
            deadline = time.monotonic() + 120
            while True:
                try:
                    reply = await sides["publisher"].publish(address_change(people[w % 3], key), idempotency_key=key)
                except grpc.aio.AioRpcError:
                    assert time.monotonic() < deadline, f"{key} never published"
                    retries += 1
                    await asyncio.sleep(0.2)
                    continue
                answered[key] = reply.sequence
                duplicates += reply.duplicate  # stored by an attempt whose answer was lost
                if len(answered) >= 20:
                    running.set()
                break

    systems = asyncio.gather(*(system(w) for w in range(8)))
    await asyncio.wait_for(running.wait(), 120)
    await restart_gateway(fed, fed.population, kill=True, down_s=2)
    await systems
    assert len(answered) == 120 and len(set(answered.values())) == 120  # one sequence per key
    got: dict[str, list[int]] = {}
    deadline = time.monotonic() + 240
    while sum(len(v) for v in got.values()) < 120 and time.monotonic() < deadline:
        for event in await sides["tax"].drain(sub.subscription_id, 1, deadline_s=5):
            address = population_pb.AddressChanged.FromString(event.payload).address
            if address.startswith("kill-"):
                got.setdefault(address, []).append(event.sequence)
    print(
        f"publish through a kill -9: 120 keys, {retries} retried calls, {duplicates} answered as stored before, "
        f"{len(got)} distinct events received"
    )
    assert {k: [s] for k, s in answered.items()} == got  # each key once, under the sequence it was answered with
