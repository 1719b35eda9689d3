"""Plausible audit records for tests, benchmarks and demos (no real exchange behind them)."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from audit.trail.record import AuditRecord, new_record_id

__all__ = ["sample_record"]

_T0_MS = 1_700_000_000_000


def sample_record(n: int = 0, *, gateway: str = "EE/GOV/70000001/gw1", **overrides: Any) -> AuditRecord:
    """Record number ``n`` of a made-up exchange; any field can be overridden by name."""
    request = f"request {n}".encode()
    response = f"response {n}".encode()
    t = _T0_MS + n
    record = AuditRecord(
        record_id=new_record_id(),
        gateway=gateway,
        side="client",
        message_id=f"msg-{n:08d}",
        client="EE/COM/12345678/tax",
        service="EE/GOV/70000001/population/population.v1.PersonRegistry",
        method="GetPerson",
        user_id="EE38001010000",
        purpose="tax-assessment",
        request_in_ms=t,
        request_out_ms=t + 1,
        response_in_ms=t + 3,
        response_out_ms=t + 4,
        request_size=len(request),
        response_size=len(response),
        request_sha256=hashlib.sha256(request).hexdigest(),
        response_sha256=hashlib.sha256(response).hexdigest(),
        status="OK",
        error_code="",
        decision="",
        policy_ids=(),
        withheld_fields=(),
        peer_gateway="EE/GOV/70000001/gw-provider",
        trace_id=f"{n:032x}",
        request_signature="c2lnbmF0dXJlLXJlcXVlc3Q=",
        response_signature="c2lnbmF0dXJlLXJlc3BvbnNl",
    )
    return dataclasses.replace(record, **overrides) if overrides else record
