"""What the gateway's health check says, computed from what the gateway holds (no wire types here).

The entries (grpc.health.v1 service names):

- ``""`` — the gateway as a whole. SERVING only when all of these hold, checked in order, each
  failing closed (anything missing, stale or unknown means NOT_SERVING):
  1. it holds a verified registry configuration that has not expired;
  2. its audit trail is writable (JetStream, or the local spool while NATS is away) and its log
     is being signed (no audit alarm: a stream that went back, a record it did not produce);
  3. when it provides services: a policy bundle is loaded (no policies never means "allow").
- ``crossway.registry``, ``crossway.audit`` and, on a provider, ``crossway.policy`` — each check
  on its own, so an operator sees *why* the gateway is NOT_SERVING.
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
    adapters: Mapping[str, AdapterHealth],
    audit_alarm: str | None = None,
) -> dict[str, Verdict]:
    """Every entry of the health check; ``policy_loaded`` is None on a gateway providing nothing."""
    verdicts: dict[str, Verdict] = {}
    # 1. an unexpired, verified registry configuration
    verdicts[REGISTRY] = _registry(current_configuration)
    # 2. a writable audit trail, whose log is being signed
    if audit_alarm is not None:
        verdicts[AUDIT] = Verdict(HealthStatus.NOT_SERVING, f"audit.unavailable: {audit_alarm}")
    elif audit_writable:
        verdicts[AUDIT] = _SERVING
    else:
        verdicts[AUDIT] = Verdict(
            HealthStatus.NOT_SERVING, "audit.unavailable: neither JetStream nor the spool takes records"
        )
    # 3. a loaded policy bundle, when this gateway provides services
    if policy_loaded is not None:
        verdicts[POLICY] = (
            _SERVING
            if policy_loaded
            else Verdict(HealthStatus.NOT_SERVING, "policy.unavailable: no valid policy set is loaded")
        )
    failing = [f"{name}: {v.reason}" for name, v in verdicts.items() if not v.serving]
    verdicts[OVERALL] = Verdict(HealthStatus.NOT_SERVING, "; ".join(failing)) if failing else _SERVING
    for service, health in adapters.items():
        verdicts[service] = Verdict(health.status, health.detail)
    return verdicts
