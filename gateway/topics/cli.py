"""``crossway topic …``: topics for people and scripts, through their own gateway.

Connects like ``crossway mail`` (``--profile DIR``, or ``--gateway``, ``--ca`` and a token or a
client certificate). The caller is the subsystem its credential names.

    crossway topic publish EE/GOV/70000002/population/address-changes --file event.bin
    crossway topic subscribe EE/GOV/70000002/population/address-changes --purpose taxation
    crossway topic receive SUBSCRIPTION_ID --save-dir events/     # hands over what it saves
    crossway topic status EE/GOV/70000002/population/address-changes

Exit codes: 0 done, 1 refused or failed (printed as ``error[code]: message`` with a hint).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

__all__ = ["add_commands"]


def _run(args: argparse.Namespace, body: Any) -> int:
    import gateway.topics.errors  # noqa: F401 - the topic.* codes, to rebuild a gateway's refusal
    from gateway.delivery.cli import run_with
    from protos.crossway.v1 import topics_pb2_grpc as tgrpc

    return run_with(args, body, tgrpc.TopicsStub)


async def _publish(c: Any, args: argparse.Namespace) -> int:
    from protos.crossway.v1 import topics_pb2 as tpb

    payload = await asyncio.to_thread(Path(args.file).read_bytes)
    reply = await c.stub.Publish(
        tpb.PublishRequest(topic=args.topic, payload=payload, idempotency_key=args.idempotency_key),
        metadata=c.metadata,
        timeout=c.timeout,
    )
    key = f" key {reply.key} #{reply.key_sequence}" if reply.key else ""
    verb = "already published" if reply.duplicate else "published"
    print(f"{verb} {args.topic} #{reply.sequence}{key} (event {reply.event_hash[:16]})")
    return 0


async def _subscribe(c: Any, args: argparse.Namespace) -> int:
    from protos.crossway.v1 import topics_pb2 as tpb

    request = tpb.SubscribeRequest(topic=args.topic, purpose=args.purpose, start_sequence=args.start, push=args.push)
    info = await c.stub.Subscribe(request, metadata=c.metadata, timeout=c.timeout)
    how = ", pushed to your backend" if info.push else ""
    print(f"subscription {info.subscription_id} to {info.topic} from #{info.start_sequence} ({info.state}{how})")
    return 0


async def _receive(c: Any, args: argparse.Namespace) -> int:
    from protos.crossway.v1 import topics_pb2 as tpb

    request = tpb.TopicReceiveRequest(subscription_id=args.subscription, max_events=args.max, wait_ms=args.wait_ms)
    events = [e async for e in c.stub.Receive(request, metadata=c.metadata, timeout=c.timeout + args.wait_ms / 1000)]
    save = Path(args.save_dir) if args.save_dir else None
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
    for e in events:
        withheld = f" withheld={','.join(e.withheld_fields)}" if e.withheld_fields else ""
        print(f"#{e.sequence} key {e.key or '-'} #{e.key_sequence} {e.event_type} {len(e.payload)} bytes{withheld}")
        if save is not None:
            (save / f"{e.sequence}.bin").write_bytes(e.payload)
    if events and not args.no_ack:
        ack = tpb.TopicAck(subscription_id=args.subscription, sequence=events[-1].sequence)
        reply = await c.stub.Ack(ack, metadata=c.metadata, timeout=c.timeout)
        print(f"handed over up to #{reply.handed_over}")
    return 0


async def _status(c: Any, args: argparse.Namespace) -> int:
    from protos.crossway.v1 import topics_pb2 as tpb

    status = await c.stub.Status(tpb.TopicStatusRequest(topic=args.topic), metadata=c.metadata, timeout=c.timeout)
    print(f"{status.topic}: {status.published} published")
    print(f"{'subscriber':<34} {'state':<8} {'handed':>7} {'lag':>6} {'failures':>8} {'refusals':>8}")
    for r in status.subscribers:
        print(f"{r.subscriber:<34} {r.state:<8} {r.handed_over:>7} {r.lag:>6} {r.failures:>8} {r.refusals:>8}")
        if r.refusal:
            print(f"  {r.refusal}")
    return 0


def add_commands(sub: Any) -> None:
    from gateway.delivery.cli import add_connection_args, command_adder

    group = sub.add_parser("topic", help="topics through your own gateway: publish, subscribe, receive, status")
    add_connection_args(group)
    cmds = group.add_subparsers(dest="topic_command", metavar="COMMAND")
    cmds.required = True
    command = command_adder(cmds, _run)
    p = command("publish", "publish one event (a serialized message of the topic's type) to a topic you own", _publish)
    p.add_argument("topic", help="INSTANCE/CLASS/CODE/SUBSYSTEM/topic-name")
    p.add_argument("--file", required=True, help="the serialized event")
    p.add_argument(
        "--idempotency-key",
        default="",
        help="your name for this event: a retry with the same key within an hour does not publish it twice",
    )
    p = command("subscribe", "ask the publisher's gateway for a subscription (decided by its policies)", _subscribe)
    p.add_argument("topic")
    p.add_argument("--purpose", required=True, help="why you subscribe (the publisher's policies look at it)")
    p.add_argument("--start", type=int, default=0, help="the first sequence wanted (default: new events only)")
    p.add_argument("--push", action="store_true", help="hand the events to your [[delivery.push]] backend method")
    p = command("receive", "receive a subscription's next events in order, and hand them over", _receive)
    p.add_argument("subscription", help="the subscription id `subscribe` printed")
    p.add_argument("--max", type=int, default=100)
    p.add_argument("--wait-ms", type=int, default=2000, help="how long to wait for a first event")
    p.add_argument("--save-dir", help="write each event's payload here as SEQUENCE.bin")
    p.add_argument("--no-ack", action="store_true", help="look only: the events are offered again later")
    p = command("status", "each subscriber's last handed-over sequence, lag, failures, refusals (owner only)", _status)
    p.add_argument("topic")
