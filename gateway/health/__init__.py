"""The gateway's health check: ``grpc.health.v1.Health`` for operators and load balancers.

Public API: ``GatewayHealth`` (owned by the runtime, served on the client and admin ports),
``assess`` and ``Verdict`` (what each entry says and why), the entry names, and ``probe_health``
(the client behind ``crossway gateway health``).
"""

from gateway.health.probe import HealthReport, probe_health
from gateway.health.service import GatewayHealth
from gateway.health.status import AUDIT, OVERALL, POLICY, REGISTRY, Verdict, assess

__all__ = [
    "AUDIT",
    "OVERALL",
    "POLICY",
    "REGISTRY",
    "GatewayHealth",
    "HealthReport",
    "Verdict",
    "assess",
    "probe_health",
]
