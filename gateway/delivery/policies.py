"""The recipient gateway's message policies, rebuilt when the registry changes what its mailboxes take.

Policies are typed against the message types this gateway's mailboxes accept (from the signed
configuration), so the set is rebuilt when a configuration changes those types or mailboxes.
Until a valid set exists every message is refused (fail closed); a set that does not validate
is logged loudly and the previous one kept.
"""

from __future__ import annotations

import logging
from pathlib import Path

from crossway.core.errors import CrosswayError
from crossway.core.ids import MemberId, SubsystemId
from policies import Decision, MessagePolicies, MessageRequest
from registry import DOCUMENT_TYPE
from registry.configuration import VerifiedConfiguration

__all__ = ["PolicyHolder"]

log = logging.getLogger(__name__)


class PolicyHolder:
    def __init__(self, policy_dir: Path | None, member: MemberId) -> None:
        self._dir = policy_dir
        self._member = member
        self._point = MessagePolicies()
        self._serial = -1
        self._shape: tuple[frozenset[str], frozenset[SubsystemId]] | None = None

    def refresh(self, config: VerifiedConfiguration) -> None:
        if config.serial == self._serial:
            return
        self._serial = config.serial
        boxes = [m for m in config.mailboxes() if m.subsystem.member == self._member]
        types = frozenset(t for m in boxes for t in m.message_types) | (
            frozenset({DOCUMENT_TYPE}) if any(m.document_content_types for m in boxes) else frozenset()
        )
        shape = (types, frozenset(m.subsystem for m in boxes))
        if shape == self._shape or not types:
            return
        if self._dir is None:
            log.warning("delivery: no [delivery] policy_dir: every message to this gateway's mailboxes is refused")
            return
        try:
            self._point.load_dir(self._dir, types, shape[1])
        except CrosswayError as exc:
            log.error("delivery: message policies in %s rejected, keeping the previous set: %s", self._dir, exc)
            return
        self._shape = shape
        log.info("delivery: message policies loaded for %d type(s) and %d mailbox(es)", len(types), len(shape[1]))

    def decide(self, request: MessageRequest) -> Decision:
        return self._point.decide(request)
