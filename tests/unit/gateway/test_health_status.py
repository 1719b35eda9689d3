"""What each entry of the gateway's health check says: numbered checks, failing closed."""

from __future__ import annotations

from adapters import AdapterHealth, HealthStatus
from crossway.core.errors import RegistryStale
from gateway.health import AUDIT, OVERALL, POLICY, REGISTRY, assess

SERVICE = "EE/GOV/70000002/population/population.v1.PersonRegistry"


def _fresh() -> object:
    return object()


def _expired() -> object:
    raise RegistryStale("registry configuration serial 7 expired at 1700000000000")


def test_a_gateway_with_a_fresh_configuration_a_writable_audit_trail_and_policies_is_serving() -> None:
    verdicts = assess(
        current_configuration=_fresh,
        audit_writable=True,
        policy_loaded=True,
        adapters={SERVICE: AdapterHealth(HealthStatus.SERVING)},
    )
    assert {name: v.status for name, v in verdicts.items()} == {
        OVERALL: HealthStatus.SERVING,
        REGISTRY: HealthStatus.SERVING,
        AUDIT: HealthStatus.SERVING,
        POLICY: HealthStatus.SERVING,
        SERVICE: HealthStatus.SERVING,
    }


def test_an_expired_configuration_makes_the_gateway_not_serving_and_says_why() -> None:
    verdicts = assess(current_configuration=_expired, audit_writable=True, policy_loaded=None, adapters={})
    assert verdicts[REGISTRY].status is HealthStatus.NOT_SERVING
    assert verdicts[OVERALL].status is HealthStatus.NOT_SERVING
    assert "registry.stale" in verdicts[OVERALL].reason and "expired" in verdicts[OVERALL].reason
    assert POLICY not in verdicts  # a gateway providing nothing needs no policy bundle


def test_an_unwritable_audit_trail_or_a_missing_policy_bundle_makes_the_gateway_not_serving() -> None:
    no_audit = assess(current_configuration=_fresh, audit_writable=False, policy_loaded=True, adapters={})
    assert (no_audit[OVERALL].status, no_audit[AUDIT].status) == (HealthStatus.NOT_SERVING, HealthStatus.NOT_SERVING)
    no_policy = assess(current_configuration=_fresh, audit_writable=True, policy_loaded=False, adapters={})
    assert no_policy[OVERALL].status is HealthStatus.NOT_SERVING
    assert no_policy[POLICY].reason.startswith("policy.unavailable")


def test_a_backend_down_is_its_service_not_serving_but_not_the_gateway() -> None:
    verdicts = assess(
        current_configuration=_fresh,
        audit_writable=True,
        policy_loaded=True,
        adapters={SERVICE: AdapterHealth(HealthStatus.NOT_SERVING, "upstream.unavailable: connection refused")},
    )
    assert verdicts[SERVICE].status is HealthStatus.NOT_SERVING
    assert verdicts[OVERALL].status is HealthStatus.SERVING


def test_stuck_audit_records_turn_the_audit_entry_not_serving_but_not_the_gateway() -> None:
    verdicts = assess(
        current_configuration=_fresh,
        audit_writable=True,
        policy_loaded=True,
        adapters={},
        audit_alarm="1 audit record(s) quarantined in /x/quarantine",
    )
    assert verdicts[AUDIT].status is HealthStatus.NOT_SERVING
    assert verdicts[AUDIT].reason.startswith("audit.stuck: 1 audit record(s) quarantined")
    assert verdicts[OVERALL].status is HealthStatus.SERVING
