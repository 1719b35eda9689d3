"""What the gateway's health check says, computed from what the gateway holds (no wire types here).

The entries (grpc.health.v1 service names):

- ``""`` — the gateway as a whole. SERVING only when all of these hold, checked in order, each
  failing closed (anything missing, stale or unknown means NOT_SERVING):
  1. it holds a verified registry configuration that has not expired;
  2. its audit trail is writable (JetStream, or the local spool while NATS is away);
  3. when it provides services: a policy bundle is loaded (no policies never means "allow").
- ``crossway.registry``, ``crossway.audit`` and, on a provider, ``crossway.policy`` — each check
  on its own, so an operator sees *why* the gateway is NOT_SERVING. ``crossway.audit`` is also
  NOT_SERVING while audit records are stuck (quarantined, or a spool that does not drain: the
  sink's ``alarm``, issue 12), and while its log is not being signed (the checkpointer's alarm: a
  stream that went back, a record the gateway did not produce; issue 11) — without taking the
  gateway out of service: its trail is still written, and must not become an outage.
- one entry per provided service id — that service's adapter, as its traffic last saw the
  backend (``adapters.health``: passive, UNKNOWN until the first call), published unchanged.

Every entry carries a reason for the gateway's log. Only the status goes on the wire, and
reasons are built from error messages, which never contain a secret (crossway.core.errors).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from adapters import AdapterHealth, HealthStatus
from crossway.core.errors import CrosswayError

__all__ = ["AUDIT", "OVERALL", "POLICY", "REGISTRY", "Verdict", "assess"]

OVERALL = ""
REGISTRY = "crossway.registry"
AUDIT = "crossway.audit"
POLICY = "crossway.policy"


@dataclass(frozen=True, slots=True)
class Verdict:
    status: HealthStatus
    reason: str = ""  # for the log line of a transition; never sent to a prober

    @property
    def serving(self) -> bool:
        return self.status is HealthStatus.SERVING


_SERVING = Verdict(HealthStatus.SERVING)


def _registry(current_configuration: Callable[[], object]) -> Verdict:
    try:
        current_configuration()  # raises RegistryStale when there is none, or it expired
    except CrosswayError as exc:
        return Verdict(HealthStatus.NOT_SERVING, f"{exc.code}: {exc.message}")
    return _SERVING


def assess(
    *,
    current_configuration: Callable[[], object],
    audit_writable: bool,
    policy_loaded: bool | None,
    audit_alarm: str = "",
    adapters: Mapping[str, AdapterHealth],
) -> dict[str, Verdict]:
    """Every entry of the health check; ``policy_loaded`` is None on a gateway providing nothing."""
    verdicts: dict[str, Verdict] = {}
    # 1. an unexpired, verified registry configuration
    verdicts[REGISTRY] = _registry(current_configuration)
    # 2. a writable audit trail
    verdicts[AUDIT] = (
        _SERVING
        if audit_writable
        else Verdict(HealthStatus.NOT_SERVING, "audit.unavailable: neither JetStream nor the spool takes records")
    )
    # 2b. no stuck records: an alarm on the audit entry alone (the overall status stays as 1–3 say)
    audit_entry = verdicts[AUDIT]
    if audit_alarm and audit_entry.serving:
        verdicts[AUDIT] = Verdict(HealthStatus.NOT_SERVING, f"audit.stuck: {audit_alarm}")
    # 3. a loaded policy bundle, when this gateway provides services
    if policy_loaded is not None:
        verdicts[POLICY] = (
            _SERVING
            if policy_loaded
            else Verdict(HealthStatus.NOT_SERVING, "policy.unavailable: no valid policy set is loaded")
        )
    overall = {**verdicts, AUDIT: audit_entry}
    failing = [f"{name}: {v.reason}" for name, v in overall.items() if not v.serving]
    verdicts[OVERALL] = Verdict(HealthStatus.NOT_SERVING, "; ".join(failing)) if failing else _SERVING
    for service, health in adapters.items():
        verdicts[service] = Verdict(health.status, health.detail)
    return verdicts
