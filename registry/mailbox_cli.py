"""``crossway registry mailbox add | list`` and ``crossway registry topic add | list``: the registry
operator gives subsystems a mailbox (registered delivery) and registers topics (publish/subscribe).

Kept beside ``registry.cli`` (which only hooks them in) so the message-bus commands stay in one place.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crossway.core.errors import ConfigError
from crossway.core.ids import SubsystemId
from registry.mailboxes import DOCUMENT_TYPE, AcceptanceMode

__all__ = ["add_mailbox_commands", "add_topic_commands"]

Opener = Callable[[argparse.Namespace], Any]


def _descriptor_set(path: str | None) -> bytes:
    if not path:
        return b""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read descriptor set {path!r}: {exc.strerror}") from exc


def _add(args: argparse.Namespace, open_authority: Opener) -> int:
    fds = _descriptor_set(args.descriptor_set)
    if not fds and args.type:
        raise ConfigError("--type needs --descriptor-set", hint="build it with protoc --descriptor_set_out=FILE")
    mode = AcceptanceMode.ACCEPT_REJECT if args.accept_reject_window_s else AcceptanceMode.HANDOVER
    open_authority(args).set_mailbox(
        SubsystemId.parse(args.subsystem),
        message_types=args.type or (),
        file_descriptor_set=fds,
        document_content_types=args.document or (),
        require_encryption=args.require_encryption,
        acceptance=mode,
        acceptance_window_ms=int(args.accept_reject_window_s * 1000),
    )
    print(f"mailbox of {args.subsystem} set ({mode.name.lower()}); publish to make it known")
    return 0


def _list(args: argparse.Namespace, open_authority: Opener) -> int:
    for box in open_authority(args).store.mailboxes():
        types = list(box.message_types) + [f"{DOCUMENT_TYPE} ({c})" for c in box.document_content_types]
        mode = AcceptanceMode(box.acceptance).name.lower()
        window = f" within {box.acceptance_window_ms // 1000}s" if box.acceptance_window_ms else ""
        flag = "  (encrypted)" if box.require_encryption else ""
        print(f"mailbox {box.subsystem}  {mode}{window}{flag}")
        for name in types:
            print(f"  accepts {name}")
    return 0


def add_mailbox_commands(
    registry_group: Any, leaf: Callable[..., argparse.ArgumentParser], open_authority: Opener
) -> None:
    """Register ``mailbox add`` and ``mailbox list`` under ``crossway registry``."""
    parser = registry_group.add_parser("mailbox", help="mailboxes for registered delivery")
    nested = parser.add_subparsers(dest="mailbox_command", metavar="COMMAND")
    nested.required = True
    p = leaf(nested, "add", lambda a: _add(a, open_authority), "give a subsystem a mailbox (or reconfigure it)")
    p.add_argument("subsystem", help="INSTANCE/CLASS/CODE/SUBSYSTEM")
    p.add_argument("--type", action="append", help="a protobuf message full name it accepts (repeatable)")
    p.add_argument("--descriptor-set", help="FileDescriptorSet defining the --type names")
    p.add_argument(
        "--document", action="append", help=f"a content type accepted as {DOCUMENT_TYPE}, e.g. application/pdf"
    )
    p.add_argument("--require-encryption", action="store_true", help="bodies must be encrypted end to end")
    p.add_argument(
        "--accept-reject-window-s",
        type=float,
        default=0,
        help="accept/reject mode: seconds the recipient has to decide after handover (default: handover mode)",
    )
    leaf(nested, "list", lambda a: _list(a, open_authority), "list mailboxes and what they accept")


def _add_topic(args: argparse.Namespace, open_authority: Opener) -> int:
    open_authority(args).set_topic(args.topic, args.type, _descriptor_set(args.descriptor_set), args.key_field)
    key = f", per-key order on {args.key_field}" if args.key_field else ""
    print(f"topic {args.topic} set ({args.type}{key}); publish to make it known")
    return 0


def _list_topics(args: argparse.Namespace, open_authority: Opener) -> int:
    for topic, event_type, _, key_field in open_authority(args).store.topics():
        print(f"topic {topic}  {event_type}" + (f"  key {key_field}" if key_field else ""))
    return 0


def add_topic_commands(
    registry_group: Any, leaf: Callable[..., argparse.ArgumentParser], open_authority: Opener
) -> None:
    """Register ``topic add`` and ``topic list`` under ``crossway registry`` (issue 15)."""
    parser = registry_group.add_parser("topic", help="topics for publish/subscribe")
    nested = parser.add_subparsers(dest="topic_command", metavar="COMMAND")
    nested.required = True
    p = leaf(nested, "add", lambda a: _add_topic(a, open_authority), "register a topic (or reconfigure it)")
    p.add_argument("topic", help="INSTANCE/CLASS/CODE/SUBSYSTEM/topic-name (the subsystem publishes)")
    p.add_argument("--type", required=True, help="the event type: a protobuf message full name")
    p.add_argument("--descriptor-set", required=True, help="FileDescriptorSet defining --type")
    p.add_argument("--key-field", default="", help="a top-level string/integer field ordering events per key")
    leaf(nested, "list", lambda a: _list_topics(a, open_authority), "list topics")
