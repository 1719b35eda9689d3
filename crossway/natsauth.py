"""Who may do what on the backbone: the NATS users and permissions, generated — never hand-written.

Each identity (``crossway.security.natspki``) gets allow lists only; anything not listed is refused
by the server (notes/nats-security.md §2–§4 checked what each JetStream call needs):

- **gateway** ``g``: publishes its own audit, archive and signed-checkpoint subjects and its own
  policy versions; reads its own policy versions and the registry configuration by *direct get of
  that one subject* (``$JS.API.DIRECT.GET.<stream>.<subject>`` refuses any request body, so it
  cannot ask for another subject), and both live via core subscriptions to exactly those
  subjects; follows its own records through one named consumer whose create subject carries the
  filter (the server checks the body against it); writes its member's shared replay window; gets
  replies only on its own inbox prefix. Nothing on any other gateway's subjects.
- **gateway** ``g`` of member ``m``, on the message bus (``crossway.bus``): publishes the delivery
  subjects under its own ``<g>`` tokens, and holds full consumer rights (named or not, pull,
  push, ordered), direct and by-sequence gets and KV writes on the streams and state bucket of
  its own member — never their deletion, purge or update, and nothing on another member's.
- **registry**: writes the configuration bucket, and may *create* (never update, purge or delete)
  the streams and buckets it owns — the configuration, the members' replay windows, delivery
  streams and state buckets — when they vanish;
  ``registry serve`` also cosigns, so it holds the cosigner's grant too; and it writes its change
  log into the audit trail like a gateway writes its own (``INSTANCE/REGISTRY/registry/registry``).
- **cosigner** (the registry's, or a member's witness): reads signed checkpoints through its own
  consumer, publishes cosignatures (under any cosigner's subject: a cosignature is verified by its
  witness key, so one published under another's subject is refused by every reader, not believed).
- **index** / **auditor**: read the evidence streams through their own named consumers and by
  sequence; publish nothing into them.
- **admin**: the JetStream API (create, update, delete streams). Held by the operator for
  provisioning and recovery, by no running component.

Nobody but the admin holds ``$JS.API.STREAM.{DELETE,PURGE,UPDATE,MSG.DELETE}``; no identity may
create an unnamed consumer (its body may name — and so update — another identity's consumer).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from crossway.backbone import (
    ARCHIVE_STREAM,
    AUDIT_STREAM,
    CHECKPOINT_PREFIX,
    CHECKPOINT_STREAM,
    POLICY_STREAM,
    REGISTRY_BUCKET,
    REGISTRY_KEY,
    archive_subject,
    audit_subject,
    checkpoint_subject,
    kv_stream,
    kv_subject,
    policy_versions_subject,
    registry_log_gateway,
    replay_bucket,
)
from crossway.bus import Names as BusNames
from crossway.bus import delivery_state_bucket, delivery_streams
from crossway.core.ids import GatewayId
from crossway.security.natspki import NatsIdentity, NatsRole

__all__ = ["Grant", "NatsUser", "grant_for", "render_authorization", "users_for"]

_API = "$JS.API"
READ_STREAMS = (AUDIT_STREAM, CHECKPOINT_STREAM, ARCHIVE_STREAM)


@dataclass(frozen=True, slots=True)
class Grant:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NatsUser:
    name: str
    grant: Grant


def _consumer(stream: str, name: str, filter_subject: str | None, *, ack: bool = False) -> list[str]:
    """The API subjects of one named consumer; with ``filter_subject`` only that filter may be set."""
    create = f"{_API}.CONSUMER.CREATE.{stream}.{name}"
    subjects = [f"{create}.{filter_subject}"] if filter_subject else [create, f"{create}.>"]
    subjects += [
        f"{_API}.CONSUMER.MSG.NEXT.{stream}.{name}",
        f"{_API}.CONSUMER.INFO.{stream}.{name}",
        f"{_API}.CONSUMER.DELETE.{stream}.{name}",
    ]
    if ack:
        subjects.append(f"$JS.ACK.{stream}.{name}.>")
    return subjects


def _configuration_reader() -> tuple[list[str], list[str]]:
    subject = kv_subject(REGISTRY_BUCKET, REGISTRY_KEY)
    return [f"{_API}.DIRECT.GET.{kv_stream(REGISTRY_BUCKET)}.{subject}"], [subject]


def _gateway(identity: NatsIdentity) -> Grant:
    gateway = identity.name
    own_audit = audit_subject(gateway)
    versions = policy_versions_subject(gateway)
    config_pub, config_sub = _configuration_reader()
    member = str(GatewayId.parse(gateway).member)
    publish = [
        own_audit,
        archive_subject(gateway),
        checkpoint_subject(gateway, "signed"),
        versions,
        f"{_API}.DIRECT.GET.{POLICY_STREAM}.{versions}",
        *_consumer(AUDIT_STREAM, identity.consumer("ck"), own_audit),
        # Each cosigner's latest cosignature of its own log (the checkpointer's proofs start there):
        # the stream's subject list, and direct get of its own cosignature subjects only.
        f"{_API}.STREAM.INFO.{CHECKPOINT_STREAM}",
        f"{_API}.DIRECT.GET.{CHECKPOINT_STREAM}.{checkpoint_subject(gateway, 'cosigned')}.*",
        *config_pub,
        kv_subject(replay_bucket(member)),
        *_message_bus(GatewayId.parse(gateway)),
    ]
    return Grant(tuple(publish), (f"{identity.inbox_prefix}.>", versions, *config_sub))


def _message_bus(gateway: GatewayId) -> list[str]:
    """Registered delivery: its own subjects; its member's streams and bucket, for reading too."""
    names = BusNames(gateway)
    own = names.tokens
    publish = [f"crossway.delivery.{kind}.{own}" for kind in ("outbox", "forward")]
    publish += [f"crossway.delivery.{kind}.{own}.>" for kind in ("inbox", "chunks", "topic", "topicbox")]
    publish.append(kv_subject(names.state_bucket, f"{own}.>"))
    for stream in (*names.streams, kv_stream(names.state_bucket)):
        publish += [
            f"{_API}.STREAM.INFO.{stream}",
            f"{_API}.STREAM.MSG.GET.{stream}",
            f"{_API}.DIRECT.GET.{stream}",
            f"{_API}.DIRECT.GET.{stream}.>",
            f"{_API}.CONSUMER.CREATE.{stream}",
            f"{_API}.CONSUMER.CREATE.{stream}.>",
            f"{_API}.CONSUMER.DURABLE.CREATE.{stream}.>",
            f"{_API}.CONSUMER.MSG.NEXT.{stream}.>",
            f"{_API}.CONSUMER.INFO.{stream}.>",
            f"{_API}.CONSUMER.DELETE.{stream}.>",
            f"$JS.ACK.{stream}.>",
            f"$JS.FC.{stream}.>",
        ]
    return publish


def _registry(identity: NatsIdentity, members: Sequence[str]) -> Grant:
    config_pub, config_sub = _configuration_reader()
    owned = [kv_stream(REGISTRY_BUCKET)]
    for m in members:
        owned += [kv_stream(replay_bucket(m)), kv_stream(delivery_state_bucket(m))]
        owned += [spec.name for spec in delivery_streams(m)]
    publish = [kv_subject(REGISTRY_BUCKET), *config_pub]
    for stream in owned:
        # INFO to notice one is gone, CREATE to put it back (CREATE never alters an existing one).
        publish += [f"{_API}.STREAM.INFO.{stream}", f"{_API}.STREAM.CREATE.{stream}"]
    publish += _cosigning(identity)
    publish += _registry_log(identity.name)
    return Grant(tuple(dict.fromkeys(publish)), (f"{identity.inbox_prefix}.>", *config_sub))


def _registry_log(instance: str) -> list[str]:
    """The registry's change log is an audit log like a gateway's, written by the registry."""
    log_id = registry_log_gateway(instance)
    own_audit = audit_subject(log_id)
    return [
        own_audit,
        checkpoint_subject(log_id, "signed"),
        *_consumer(AUDIT_STREAM, NatsIdentity.gateway(log_id).consumer("ck"), own_audit),
        f"{_API}.DIRECT.GET.{CHECKPOINT_STREAM}.{checkpoint_subject(log_id, 'cosigned')}.*",
    ]


def _cosigning(identity: NatsIdentity) -> list[str]:
    return [
        f"{CHECKPOINT_PREFIX}.cosigned.>",
        f"{_API}.STREAM.INFO.{CHECKPOINT_STREAM}",
        *_consumer(CHECKPOINT_STREAM, identity.consumer("cs"), None, ack=True),
    ]


def _cosigner(identity: NatsIdentity) -> Grant:
    config_pub, config_sub = _configuration_reader()
    return Grant((*_cosigning(identity), *config_pub), (f"{identity.inbox_prefix}.>", *config_sub))


def _reader(identity: NatsIdentity) -> Grant:
    config_pub, config_sub = _configuration_reader()  # the witnesses a configuration names
    publish: list[str] = [*config_pub]
    for stream in READ_STREAMS:
        publish += [f"{_API}.STREAM.INFO.{stream}", f"{_API}.STREAM.MSG.GET.{stream}"]
        for purpose in ("feed", "fetch"):
            publish += _consumer(stream, identity.consumer(purpose), None)
    return Grant(tuple(publish), (f"{identity.inbox_prefix}.>", *config_sub))


def _admin(identity: NatsIdentity) -> Grant:
    return Grant((f"{_API}.>",), (f"{identity.inbox_prefix}.>",))


def grant_for(identity: NatsIdentity, *, members: Sequence[str] = ()) -> Grant:
    """What ``identity`` may publish and subscribe to; ``members`` are the federation's member ids."""
    role = identity.role
    if role is NatsRole.GATEWAY:
        return _gateway(identity)
    if role is NatsRole.REGISTRY:
        return _registry(identity, members)
    if role is NatsRole.COSIGNER:
        return _cosigner(identity)
    if role in (NatsRole.INDEX, NatsRole.AUDITOR):
        return _reader(identity)
    if role is NatsRole.ADMIN:
        return _admin(identity)
    raise ValueError(f"{identity} is not a client identity")  # routes authenticate in the cluster block


def users_for(issued: Iterable[tuple[NatsIdentity, int]], *, members: Sequence[str] = ()) -> list[NatsUser]:
    """One user per issued certificate (identity, serial), in a stable order."""
    users = [NatsUser(identity.user(serial), grant_for(identity, members=members)) for identity, serial in issued]
    return sorted(users, key=lambda u: u.name)


def _quoted(items: Iterable[str]) -> str:
    # JSON strings are valid nats-server config strings; "$JS…" inside quotes stays literal.
    return ", ".join(json.dumps(i) for i in items)


# nats-server 2.15.1 with verify_and_map and an EMPTY users list admitted any certificate of the CA,
# unrestricted (checked here). This user is always listed so that the server maps every client; no
# certificate can name it (the CA only issues role/name identities with a serial) and it may do nothing.
NOBODY = NatsUser("crossway-nats://nobody", Grant((), ()))


def render_authorization(users: Iterable[NatsUser]) -> str:
    """The ``authorization { users = [...] }`` block nats-server includes; no identity means nobody gets in."""
    lines = ["# Generated by Crossway from the registry; edits are overwritten.", "authorization {", "  users = ["]
    lines.append(
        f'    {{ user: {json.dumps(NOBODY.name)}, permissions: {{ publish: {{ deny: [">"] }}, subscribe: {{ deny: [">"] }} }} }}'
    )
    for user in users:
        for text in (user.name, *user.grant.publish, *user.grant.subscribe):
            if any(c in text for c in '"\\\n') or not text:
                raise ValueError(f"refusing to write {text!r} into the NATS configuration")
        lines.append(
            f"    {{ user: {json.dumps(user.name)}, permissions: {{"
            f" publish: {{ allow: [{_quoted(user.grant.publish)}] }},"
            f" subscribe: {{ allow: [{_quoted(user.grant.subscribe)}] }} }} }}"
        )
    lines += ["  ]", "}", ""]
    return "\n".join(lines)
