"""The publisher gateway's topic policies, reloaded when their files or this member's topics change.

Decisions are taken for every event, so a withdrawn permit must take effect within seconds: the
directory is looked at again at most once a second (its files' bytes hashed into the policy
version), and a changed set is loaded whole. Until a valid set exists every subscriber is refused
(fail closed); a set that does not validate is logged loudly and — fail closed again — refuses
everything until fixed, rather than keeping permits the operator may have meant to withdraw.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

from crossway.core.errors import CrosswayError
from crossway.core.ids import MemberId
from policies import Decision, TopicPolicies, TopicRequest
from policies.bundle import read_policy_dir
from registry.configuration import VerifiedConfiguration

__all__ = ["TopicPolicyHolder"]

log = logging.getLogger(__name__)

_LOOK_EVERY_S = 1.0


class TopicPolicyHolder:
    def __init__(self, policy_dir: Path | None, member: MemberId) -> None:
        self._dir = policy_dir
        self._member = member
        self._point: TopicPolicies | None = None
        self._shape: tuple[str, str] = ("", "")
        self._looked = 0.0

    def refresh(self, config: VerifiedConfiguration) -> None:
        now = time.monotonic()
        if now - self._looked < _LOOK_EVERY_S:
            return
        self._looked = now
        if self._dir is None:
            return
        topics = {str(t.id): t.event_type for t in config.topics() if t.id.publisher.member == self._member}
        try:
            files = read_policy_dir(self._dir)
        except (CrosswayError, OSError) as exc:
            log.error("topics: cannot read policies in %s: %s (every subscriber refused)", self._dir, exc)
            self._point, self._shape = None, ("", "")
            return
        digest = hashlib.sha256(repr(sorted(files.items())).encode()).hexdigest()[:16]
        shape = (digest, repr(sorted(topics.items())))
        if shape == self._shape or not topics:
            return
        point = TopicPolicies()
        try:
            point.load(files, topics, version=digest)
        except CrosswayError as exc:
            log.error("topics: policies in %s rejected (every subscriber refused until fixed): %s", self._dir, exc)
            self._point, self._shape = None, shape
            return
        self._point, self._shape = point, shape
        log.info("topics: policies %s loaded for %d topic(s)", digest, len(topics))

    def decide(self, request: TopicRequest) -> Decision:
        if self._point is None:
            return Decision.deny("no topic policies are loaded (fail closed)")
        return self._point.decide(request)
