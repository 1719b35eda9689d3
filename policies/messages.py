"""Message policies (registered delivery, issue 14): may this sender put this message in this mailbox?

The recipient's gateway decides with Cedar before it stores a relayed message, deny by default,
``forbid`` beats ``permit``. Principal = the sending subsystem (in its member, registry groups
and the recipient's local groups); action = the message type (``Crossway::Action::"court.v1.
Summons"``, each in the group ``Crossway::Action::"messages/*"``); resource = the mailbox
(``Crossway::Mailbox::"EE/COM/70000003/business"``); context = purpose, type, content type,
correlation id, size, encryption, time and the sender's ids (``policies/messages.cedarschema``).

The same loader rules as for calls apply (``policies.loading``): static policies only, an
``@id`` per policy or a generated one, strict validation against the schema — a policy naming a
type no mailbox accepts is rejected at load time. A set is built once and swapped whole.
Topics (issue 15) reuse the loader and the decision's interpretation (``policies.topics``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import cedarpy
from cedarpy import pst

from crossway.core.ids import SubsystemId
from policies.bundle import POLICY_SUFFIX, read_policy_dir
from policies.decision import Decision
from policies.errors import PolicyInvalid
from policies.groups import LOCAL_GROUPS_FILE, parse_local_groups
from policies.loading import LoadedPolicy, load_policy_text
from policies.schema import ACTION, GROUP, LOCAL_GROUP, MEMBER, NAMESPACE, SUBSYSTEM

__all__ = [
    "MAILBOX",
    "MESSAGES_GROUP",
    "MessagePolicies",
    "MessageRequest",
    "generated_schema",
    "interpret",
    "load_policy_files",
    "message_schema_text",
    "principal_entity",
]

MAILBOX = f"{NAMESPACE}::Mailbox"
MESSAGES_GROUP = "messages/*"
SCHEMA_PATH = Path(__file__).with_name("messages.cedarschema")
_HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class MessageRequest:
    """A relayed message, as the recipient's gateway sees it after verifying it."""

    sender: SubsystemId
    sender_groups: frozenset[str]
    mailbox: SubsystemId
    message_type: str
    purpose: str = ""
    content_type: str = ""
    correlation_id: str = ""
    size: int = 0
    encrypted: bool = False
    now_ms: int = 0


def generated_schema(path: Path, group: str, names: Iterable[str], resource: str, context: str) -> str:
    """A schema file with one action per name (each in ``group``) inserted before its closing brace."""
    text = path.read_text(encoding="utf-8")
    end = text.rstrip().rfind("}")
    lines = [f'  action "{group}";']
    for name in sorted(set(names)):
        lines.append(
            f'  action "{name}" in [Action::"{group}"]\n'
            f"    appliesTo {{ principal: Subsystem, resource: {resource}, context: {context} }};"
        )
    return f"{text[:end]}  // --- generated: one action per name ---\n" + "\n".join(lines) + f"\n{text[end:]}"


def message_schema_text(message_types: Iterable[str]) -> str:
    """The schema with one action per message type (names are protobuf full names: no quotes)."""
    return generated_schema(SCHEMA_PATH, MESSAGES_GROUP, message_types, "Mailbox", "MessageContext")


def load_policy_files(
    files: Mapping[str, str], schema: cedarpy.Schema, action_ids: list[str], what: str
) -> tuple[list[LoadedPolicy], Mapping[str, frozenset[str]], cedarpy.PolicySet]:
    """Policy files and local groups of one directory, validated; ``what`` names them in errors."""
    policies: list[LoadedPolicy] = []
    local_groups: Mapping[str, frozenset[str]] = MappingProxyType({})
    for name in sorted(files):
        if name == LOCAL_GROUPS_FILE:
            local_groups = parse_local_groups(name, files[name])
        elif name.endswith(POLICY_SUFFIX):
            policies.extend(load_policy_text(name, files[name], schema, action_ids))
        else:
            raise PolicyInvalid(f"{name}: not a policy file", hint=f"{what} policy files end in {POLICY_SUFFIX}")
    ids = [p.id for p in policies]
    if len(set(ids)) != len(ids):
        raise PolicyInvalid(f"two {what} policies share an @id", hint='give each policy its own @id("...")')
    policy_set = cedarpy.PolicySet.from_pst(
        pst.PolicySet(
            templates=pst.FrozenMap(),
            static_policies=pst.FrozenMap({p.id: p.template for p in policies}),
            template_links=(),
        )
    )
    return policies, local_groups, policy_set


def principal_entity(subsystem: SubsystemId, groups: frozenset[str], local: Mapping[str, frozenset[str]]) -> str:
    """The principal subsystem in its member, registry groups and local groups (Cedar entity JSON)."""
    member = str(subsystem.member)
    mine = local.get(str(subsystem), frozenset()) | local.get(member, frozenset())
    parents = [{"type": MEMBER, "id": member}]
    parents += [{"type": GROUP, "id": g} for g in sorted(groups)]
    parents += [{"type": LOCAL_GROUP, "id": g} for g in sorted(mine)]
    return json.dumps([{"uid": {"type": SUBSYSTEM, "id": str(subsystem)}, "attrs": {}, "parents": parents}])


def interpret(result: Any, permits: frozenset[str], version: str) -> Decision:
    """Cedar's answer as a Decision; an erroring forbid denies (Cedar alone would skip it)."""
    reasons = tuple(sorted(result.diagnostics.reasons))
    errors = tuple(result.diagnostics.errors)
    errored = {e.split("`")[1] for e in errors if e.count("`") >= 2} - permits
    if errored:
        ids = tuple(sorted(errored))
        return Decision(False, ids, f"forbid {', '.join(ids) or '?'} failed to evaluate (fail closed)", errors, version)
    if result.allowed:
        return Decision(True, reasons, f"permitted by {', '.join(reasons)}", errors, version)
    if reasons:
        return Decision(False, reasons, f"forbidden by {', '.join(reasons)}", errors, version)
    return Decision(False, (), "no permit matched", errors, version)


@dataclass(frozen=True, slots=True, eq=False)
class _Loaded:
    version: str
    policy_set: cedarpy.PolicySet
    permits: frozenset[str]
    entities: cedarpy.Entities
    local_groups: Mapping[str, frozenset[str]]
    message_types: frozenset[str]


class MessagePolicies:
    """The decision point for messages. ``load`` builds a set (raising ``PolicyInvalid`` with file:line),
    ``decide`` never raises for a deny and fails closed on any internal error."""

    def __init__(self) -> None:
        self._loaded: _Loaded | None = None

    @property
    def version(self) -> str:
        return self._loaded.version if self._loaded is not None else ""

    @property
    def message_types(self) -> frozenset[str]:
        return self._loaded.message_types if self._loaded is not None else frozenset()

    def load(
        self,
        files: Mapping[str, str],
        message_types: Iterable[str],
        mailboxes: Iterable[SubsystemId],
        *,
        version: str = "local",
    ) -> None:
        types = frozenset(message_types)
        schema = cedarpy.Schema.from_str(message_schema_text(types))
        policies, local_groups, policy_set = load_policy_files(files, schema, sorted(types), "message")
        base: list[dict[str, Any]] = [{"uid": {"type": ACTION, "id": MESSAGES_GROUP}, "attrs": {}, "parents": []}]
        base += [
            {"uid": {"type": ACTION, "id": t}, "attrs": {}, "parents": [{"type": ACTION, "id": MESSAGES_GROUP}]}
            for t in sorted(types)
        ]
        base += [
            {"uid": {"type": MAILBOX, "id": str(m)}, "attrs": {"owner": str(m.member)}, "parents": []}
            for m in sorted(set(mailboxes))
        ]
        self._loaded = _Loaded(
            version,
            policy_set,
            frozenset(p.id for p in policies if p.effect == "permit"),
            cedarpy.Entities.from_json_str(json.dumps(base)),
            local_groups,
            types,
        )

    def load_dir(self, path: Path, message_types: Iterable[str], mailboxes: Iterable[SubsystemId]) -> None:
        self.load(read_policy_dir(path), message_types, mailboxes, version=str(path))

    def decide(self, request: MessageRequest) -> Decision:
        loaded = self._loaded
        if loaded is None:
            return Decision.deny("no message policies are loaded (fail closed)")
        if request.message_type not in loaded.message_types:
            return Decision.deny(
                f"{request.message_type} is not a type these policies were built for", policy_version=loaded.version
            )
        try:
            return _decide(loaded, request)
        except Exception as exc:  # fail closed: nothing below may turn into an allow
            return Decision.deny(
                "evaluation failed (fail closed)",
                errors=(f"{type(exc).__name__}: {exc}",),
                policy_version=loaded.version,
            )


def _decide(loaded: _Loaded, request: MessageRequest) -> Decision:
    sender = request.sender
    member = str(sender.member)
    entities = loaded.entities.with_added_json_str(principal_entity(sender, request.sender_groups, loaded.local_groups))
    context = {
        "purpose": request.purpose,
        "message_type": request.message_type,
        "content_type": request.content_type,
        "correlation_id": request.correlation_id,
        "size": request.size,
        "encrypted": request.encrypted,
        "time": request.now_ms,
        "hour_utc": (request.now_ms // _HOUR_MS) % 24,
        "sender": {
            "instance": sender.member.instance,
            "member_class": sender.member.member_class,
            "member": member,
            "subsystem": str(sender),
        },
    }
    cedar_request = {
        "principal": {"type": SUBSYSTEM, "id": str(sender)},
        "action": {"type": ACTION, "id": request.message_type},
        "resource": {"type": MAILBOX, "id": str(request.mailbox)},
        "context": context,
    }
    result = cedarpy.is_authorized(cedar_request, loaded.policy_set, entities)
    return interpret(result, loaded.permits, loaded.version)
