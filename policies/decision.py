"""The values a decision point takes and returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from crossway.core.ids import MethodId, SubsystemId
from policies.obligations import Quota

__all__ = ["AccessRequest", "Claim", "Decision"]

Claim = str | int | bool


def _no_claims() -> Mapping[str, Claim]:
    # A read-only empty mapping: a frozen request must not share a mutable default.
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """Who calls which method, and why — everything a policy may look at.

    ``client`` is the authenticated subsystem; ``client_groups`` are its global group codes
    from the registry (never from the client's own say-so); ``user_claims`` are verified claims
    about the end user; ``now_ms`` is the request time in unix milliseconds.
    """

    client: SubsystemId
    client_groups: frozenset[str]
    method: MethodId
    purpose: str = ""
    user_id: str = ""
    user_claims: Mapping[str, Claim] = field(default_factory=_no_claims)
    now_ms: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome, with what the audit record needs.

    ``policy_ids`` are the deciding policies: the permits that allowed, or the forbids that
    denied; empty when nothing matched (``no_permit`` tells a deny of that kind apart). ``errors`` are evaluation errors — an error never
    allows. ``policy_version`` is the version of the bundle that decided.
    """

    allowed: bool
    policy_ids: tuple[str, ...] = ()
    reason: str = ""
    errors: tuple[str, ...] = ()
    policy_version: str = ""
    # Obligations of the deciding permits (``policies.obligations``): the response fields the
    # client may receive (None = all) and the quotas the gateway must enforce.
    fields: frozenset[str] | None = None
    quotas: tuple[Quota, ...] = ()

    @property
    def no_permit(self) -> bool:
        """A deny because no permit matched (rather than a forbid)."""
        return not self.allowed and not self.policy_ids

    @classmethod
    def deny(cls, reason: str, *, errors: tuple[str, ...] = (), policy_version: str = "") -> Decision:
        return cls(False, (), reason, errors, policy_version)
