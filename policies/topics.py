"""Topic policies (publish/subscribe, issue 15): may this subscriber receive this topic's events?

The publisher's gateway decides with Cedar when a subscriber asks and again for every event,
deny by default, ``forbid`` beats ``permit``. Principal = the subscribing subsystem (in its
member, registry groups and the publisher's local groups); action = the topic id (each in
``Crossway::Action::"topics/*"``); resource = the topic (``Crossway::Topic::"<topic id>"``);
context = purpose, event type, sequence, time and the subscriber's ids
(``policies/topics.cedarschema``). A permit's ``@fields`` minimizes what the subscriber receives,
as for calls: the union of the deciding permits' fields, all of them when one has none.

The loader is the message policies' (``policies.messages``): static policies, an ``@id`` each,
strict validation — a policy naming a topic this gateway does not publish fails to load.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import cedarpy

from crossway.core.ids import SubsystemId
from policies.bundle import read_policy_dir
from policies.decision import Decision
from policies.messages import generated_schema, interpret, load_policy_files, principal_entity
from policies.obligations import Obligations, combine
from policies.schema import ACTION, NAMESPACE, SUBSYSTEM

__all__ = ["TOPIC", "TOPICS_GROUP", "TopicPolicies", "TopicRequest", "topic_schema_text"]

TOPIC = f"{NAMESPACE}::Topic"
TOPICS_GROUP = "topics/*"
SCHEMA_PATH = Path(__file__).with_name("topics.cedarschema")
_HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class TopicRequest:
    subscriber: SubsystemId
    subscriber_groups: frozenset[str]
    topic: str
    purpose: str = ""
    sequence: int = 0
    now_ms: int = 0


def topic_schema_text(topics: Iterable[str]) -> str:
    return generated_schema(SCHEMA_PATH, TOPICS_GROUP, topics, "Topic", "TopicContext")


@dataclass(frozen=True, slots=True, eq=False)
class _Loaded:
    version: str
    policy_set: cedarpy.PolicySet
    permits: frozenset[str]
    obligations: Mapping[str, Obligations]
    entities: cedarpy.Entities
    local_groups: Mapping[str, frozenset[str]]
    event_types: Mapping[str, str]


class TopicPolicies:
    """``load`` builds a set for the topics this gateway publishes (``PolicyInvalid`` naming
    file:line); ``decide`` never raises for a deny and fails closed on any internal error."""

    def __init__(self) -> None:
        self._loaded: _Loaded | None = None

    @property
    def version(self) -> str:
        return self._loaded.version if self._loaded is not None else ""

    def load(self, files: Mapping[str, str], topics: Mapping[str, str], *, version: str = "local") -> None:
        """``topics``: topic id → its event type."""
        schema = cedarpy.Schema.from_str(topic_schema_text(topics))
        policies, local_groups, policy_set = load_policy_files(files, schema, sorted(topics), "topic")
        base: list[dict[str, object]] = [{"uid": {"type": ACTION, "id": TOPICS_GROUP}, "attrs": {}, "parents": []}]
        for topic, event_type in sorted(topics.items()):
            base.append(
                {"uid": {"type": ACTION, "id": topic}, "attrs": {}, "parents": [{"type": ACTION, "id": TOPICS_GROUP}]}
            )
            owner = topic.rpartition("/")[0]
            base.append(
                {
                    "uid": {"type": TOPIC, "id": topic},
                    "attrs": {"owner": owner, "event_type": event_type},
                    "parents": [],
                }
            )
        self._loaded = _Loaded(
            version,
            policy_set,
            frozenset(p.id for p in policies if p.effect == "permit"),
            MappingProxyType({p.id: p.obligations for p in policies}),
            cedarpy.Entities.from_json_str(json.dumps(base)),
            local_groups,
            MappingProxyType(dict(topics)),
        )

    def load_dir(self, path: Path, topics: Mapping[str, str], version: str) -> None:
        self.load(read_policy_dir(path), topics, version=version)

    def decide(self, request: TopicRequest) -> Decision:
        loaded = self._loaded
        if loaded is None:
            return Decision.deny("no topic policies are loaded (fail closed)")
        if request.topic not in loaded.event_types:
            return Decision.deny(
                f"{request.topic} is not a topic these policies were built for", policy_version=loaded.version
            )
        try:
            decision = _decide(loaded, request)
        except Exception as exc:  # fail closed: nothing below may turn into an allow
            return Decision.deny(
                "evaluation failed (fail closed)",
                errors=(f"{type(exc).__name__}: {exc}",),
                policy_version=loaded.version,
            )
        if not decision.allowed:
            return decision
        fields, _ = combine(decision.policy_ids, loaded.obligations)
        return Decision(True, decision.policy_ids, decision.reason, decision.errors, decision.policy_version, fields)


def _decide(loaded: _Loaded, request: TopicRequest) -> Decision:
    subscriber = request.subscriber
    entities = loaded.entities.with_added_json_str(
        principal_entity(subscriber, request.subscriber_groups, loaded.local_groups)
    )
    context = {
        "purpose": request.purpose,
        "event_type": loaded.event_types[request.topic],
        "sequence": request.sequence,
        "time": request.now_ms,
        "hour_utc": (request.now_ms // _HOUR_MS) % 24,
        "subscriber": {
            "instance": subscriber.member.instance,
            "member_class": subscriber.member.member_class,
            "member": str(subscriber.member),
            "subsystem": str(subscriber),
        },
    }
    cedar_request = {
        "principal": {"type": SUBSYSTEM, "id": str(subscriber)},
        "action": {"type": ACTION, "id": request.topic},
        "resource": {"type": TOPIC, "id": request.topic},
        "context": context,
    }
    result = cedarpy.is_authorized(cedar_request, loaded.policy_set, entities)
    return interpret(result, loaded.permits, loaded.version)
