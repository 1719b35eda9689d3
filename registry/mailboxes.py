"""Mailboxes for registered delivery (issue 14): what a subsystem accepts, and how.

A mailbox belongs to one subsystem and says which message types it accepts — protobuf message
types (full names, defined by a descriptor set the registry publishes with it) and, optionally,
generic documents (``crossway.v1.Document``) of listed content types — whether bodies must be
encrypted end to end to the recipient member, and its acceptance mode: *handover* (the
recipient's acknowledgement ends the delivery) or *accept_reject* (after handover the recipient
must accept or reject within a window, else AcceptanceRejectionExpiry).
"""

from __future__ import annotations

import enum
import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

from google.protobuf import descriptor_pb2
from google.protobuf.message import DecodeError

from crossway.core.errors import ConfigError
from crossway.core.ids import SubsystemId

__all__ = [
    "DOCUMENT_TYPE",
    "AcceptanceMode",
    "MailboxView",
    "message_types_in",
    "validate_mailbox",
]

# The generic document type: any bytes with a content type the mailbox lists.
DOCUMENT_TYPE = "crossway.v1.Document"


class AcceptanceMode(enum.Enum):
    # Values match crossway.v1.AcceptanceMode on the wire.
    HANDOVER = 1
    ACCEPT_REJECT = 2

    @classmethod
    def parse(cls, text: str) -> AcceptanceMode:
        try:
            return cls[text.upper().replace("-", "_")]
        except KeyError:
            raise ConfigError(f"acceptance mode {text!r} is not handover or accept_reject") from None


@dataclass(frozen=True, slots=True)
class MailboxView:
    subsystem: SubsystemId
    message_types: frozenset[str]
    file_descriptor_set: bytes
    document_content_types: tuple[str, ...]
    require_encryption: bool
    acceptance: AcceptanceMode
    acceptance_window_ms: int = 0

    def accepts(self, message_type: str, content_type: str) -> bool:
        """Does the mailbox take this type (and, for a document, this content type)?"""
        if message_type == DOCUMENT_TYPE:
            return any(fnmatch.fnmatchcase(content_type, pattern) for pattern in self.document_content_types)
        return message_type in self.message_types


def message_types_in(file_descriptor_set: bytes) -> frozenset[str]:
    """Every message full name defined in a serialized FileDescriptorSet (nested ones too)."""
    fds = descriptor_pb2.FileDescriptorSet()
    try:
        fds.ParseFromString(file_descriptor_set)
    except DecodeError as exc:
        raise ValueError("not a serialized google.protobuf.FileDescriptorSet") from exc
    names: set[str] = set()

    def walk(prefix: str, messages: Iterable[descriptor_pb2.DescriptorProto]) -> None:
        for message in messages:
            full = f"{prefix}.{message.name}" if prefix else message.name
            names.add(full)
            walk(full, message.nested_type)

    for file in fds.file:
        walk(file.package, file.message_type)
    return frozenset(names)


def validate_mailbox(
    subsystem: SubsystemId,
    message_types: Iterable[str],
    file_descriptor_set: bytes,
    document_content_types: Iterable[str],
    acceptance: AcceptanceMode,
    acceptance_window_ms: int,
) -> None:
    """Refuse a mailbox that could never receive anything, or names a type it cannot define."""
    types = sorted(set(message_types))
    documents = list(document_content_types)
    if not types and not documents:
        raise ConfigError(
            f"mailbox of {subsystem} accepts nothing",
            hint="name message types (--type, with --descriptor-set) or document content types (--document)",
        )
    if DOCUMENT_TYPE in types:
        raise ConfigError(f"{DOCUMENT_TYPE} is accepted with --document CONTENT_TYPE, not --type")
    if types:
        try:
            defined = message_types_in(file_descriptor_set)
        except ValueError as exc:
            raise ConfigError(
                f"descriptor set for the mailbox of {subsystem} is unusable: {exc}",
                hint="build it with `protoc --include_imports --descriptor_set_out=FILE`",
            ) from exc
        unknown = [t for t in types if t not in defined]
        if unknown:
            raise ConfigError(
                f"the descriptor set does not define {', '.join(unknown)}",
                hint="message types are protobuf full names, e.g. court.v1.Summons",
            )
    for pattern in documents:
        if "/" not in pattern or any(c.isspace() for c in pattern):
            raise ConfigError(f"document content type {pattern!r} is not TYPE/SUBTYPE (wildcards allowed)")
    if acceptance is AcceptanceMode.ACCEPT_REJECT and acceptance_window_ms <= 0:
        raise ConfigError("accept_reject mode needs a positive acceptance window", hint="e.g. --window-s 86400")
