"""Access questions — "would client C be allowed to call method M for purpose P?" — asked of a
policy set, and the one-line answer ``crossway policy test`` prints and the admin API returns.

One machinery for both: the CLI asks of policy files offline (``policy test``), the admin port
asks of the set in force, typed against the methods the gateway serves now (``TestAccess``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from crossway.core.errors import ConfigError, CrosswayError
from crossway.core.ids import MethodId, SubsystemId
from policies import AccessRequest, Claim, Decision

__all__ = ["AccessQuestion", "describe_decision", "quota_text"]


@dataclass(frozen=True, slots=True)
class AccessQuestion:
    """The question as a person writes it (ids as text); ``request()`` checks and types it."""

    client: str
    method: str
    purpose: str = ""
    user_id: str = ""
    claims: Mapping[str, Claim] | None = None
    groups: Iterable[str] = ()
    time_ms: int = 0

    def request(self, where: str = "question", extra_groups: Iterable[str] = ()) -> AccessRequest:
        """The typed request; a malformed id is ``config.invalid`` naming ``where``."""
        if not (self.client and self.method):
            raise ConfigError(f"{where}: name a client and a method", hint="a question needs client and method")
        try:
            return AccessRequest(
                client=SubsystemId.parse(self.client),
                client_groups=frozenset(self.groups) | frozenset(extra_groups),
                method=MethodId.parse(self.method),
                purpose=self.purpose,
                user_id=self.user_id,
                user_claims=dict(self.claims or {}),
                now_ms=self.time_ms,
            )
        except CrosswayError as exc:
            raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from exc


def describe_decision(decision: Decision) -> str:
    """``ALLOW  by tax-reads-persons`` / ``DENY   no permit matched`` / ``DENY   forbidden by …``."""
    if decision.allowed:
        return f"ALLOW  by {', '.join(decision.policy_ids)}"
    if decision.no_permit:
        return f"DENY   no permit matched{' (' + decision.reason + ')' if decision.errors else ''}"
    return f"DENY   forbidden by {', '.join(decision.policy_ids)}"


def quota_text(decision: Decision) -> list[str]:
    """The deciding permits' quotas as written (``600/min (tax-reads-persons)``)."""
    out = []
    for q in decision.quotas:
        unit = {1: "s", 60: "min", 3600: "h"}.get(q.period_s, f"{q.period_s}s")
        out.append(f"{q.limit}/{unit} ({q.policy_id})")
    return out
