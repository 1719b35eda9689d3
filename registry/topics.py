"""Topics for publish/subscribe (issue 15): what a publishing subsystem emits, and how it is ordered.

A topic is named ``INSTANCE/CLASS/CODE/SUBSYSTEM/topic-name``: the subsystem part is its owner,
the only one that may publish. Its events are one protobuf message type (a full name defined by
the descriptor set the registry publishes with it); an optional *key field* (a top-level string
or integer field of that type) orders events per key, so a subscriber can rely on the order of
one person's address changes without the whole topic being one queue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError

from crossway.core.errors import ConfigError, CrosswayError
from crossway.core.ids import SubsystemId
from registry.mailboxes import message_types_in

__all__ = ["TopicId", "TopicView", "validate_topic"]

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_KEY_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_STRING,
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
    }
)


@dataclass(frozen=True, slots=True, order=True)
class TopicId:
    publisher: SubsystemId
    name: str

    @classmethod
    def parse(cls, text: str) -> TopicId:
        head, _, name = text.rpartition("/")
        try:
            publisher = SubsystemId.parse(head)
        except CrosswayError as exc:
            raise ConfigError(
                f"topic id {text[:120]!r} is not INSTANCE/CLASS/CODE/SUBSYSTEM/topic-name",
                hint="e.g. EE/GOV/70000002/population/address-changes",
            ) from exc
        if not _NAME.fullmatch(name):
            raise ConfigError(
                f"topic name {name[:80]!r} is not 1-63 of a-z 0-9 - (starting with a letter or digit)",
                hint="e.g. address-changes",
            )
        return cls(publisher, name)

    def __str__(self) -> str:
        return f"{self.publisher}/{self.name}"


@dataclass(frozen=True, slots=True)
class TopicView:
    id: TopicId
    event_type: str
    file_descriptor_set: bytes
    key_field: str = ""

    def message_class(self) -> Any:
        """The generated class of the event type (from the topic's own descriptor set)."""
        fds = descriptor_pb2.FileDescriptorSet.FromString(self.file_descriptor_set)
        pool = descriptor_pool.DescriptorPool()
        for file in fds.file:  # --include_imports lists dependencies first
            pool.Add(file)
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(self.event_type))

    def parse_event(self, payload: bytes, cls: Any | None = None) -> Any:
        """The payload as the event type; ``DecodeError`` when it is not one."""
        message = (cls or self.message_class())()
        message.ParseFromString(payload)
        return message

    def key_of(self, message: Any) -> str:
        """The event's key (its key field as text), "" when the topic has no key field."""
        return str(getattr(message, self.key_field)) if self.key_field else ""


def validate_topic(topic: TopicId, event_type: str, file_descriptor_set: bytes, key_field: str) -> None:
    """Refuse a topic whose event type the descriptor set does not define, or a bad key field."""
    try:
        defined = message_types_in(file_descriptor_set)
    except ValueError as exc:
        raise ConfigError(
            f"descriptor set for topic {topic} is unusable: {exc}",
            hint="build it with `protoc --include_imports --descriptor_set_out=FILE`",
        ) from exc
    if event_type not in defined:
        raise ConfigError(
            f"the descriptor set does not define {event_type!r}",
            hint="the event type is a protobuf full name, e.g. population.v1.AddressChanged",
        )
    if not key_field:
        return
    view = TopicView(topic, event_type, file_descriptor_set, key_field)
    try:
        fields = view.message_class().DESCRIPTOR.fields_by_name
    except (DecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"the event type {event_type} of topic {topic} does not load: {exc}") from exc
    field = fields.get(key_field)
    if field is None or field.type not in _KEY_TYPES or getattr(field, "is_repeated", False):
        raise ConfigError(
            f"key field {key_field!r} is not a top-level string or integer field of {event_type}",
            hint="name a field such as person_id, or leave the key field out",
        )
