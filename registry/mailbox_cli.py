"""``crossway registry mailbox add | list``: the registry operator gives subsystems a mailbox.

Kept beside ``registry.cli`` (which only hooks it in) so the delivery commands stay in one place.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crossway.core.errors import ConfigError
from crossway.core.ids import SubsystemId
from registry.mailboxes import DOCUMENT_TYPE, AcceptanceMode

__all__ = ["add_mailbox_commands"]

Opener = Callable[[argparse.Namespace], Any]


def _add(args: argparse.Namespace, open_authority: Opener) -> int:
    fds = b""
    if args.descriptor_set:
        try:
            fds = Path(args.descriptor_set).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read descriptor set {args.descriptor_set!r}: {exc.strerror}") from exc
    elif args.type:
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
