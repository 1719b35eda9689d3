"""What one side of one exchange did, collected along the way and turned into its audit record."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

import grpc

from audit.trail.record import AuditRecord
from crossway.core.errors import CrosswayError

__all__ = ["Exchange"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode() if data else ""


@dataclass(slots=True)
class Exchange:
    """Mutable on purpose: filled step by step by one pipeline task, then frozen into a record."""

    side: str  # "client" | "provider"
    message_id: str = ""
    client: str = ""
    service: str = ""
    method: str = ""
    user_id: str = ""
    purpose: str = ""
    request_in_ms: int = 0
    request_out_ms: int = 0
    response_in_ms: int = 0
    response_out_ms: int = 0
    request_size: int = 0
    response_size: int = 0
    request_digest: Any = field(default_factory=hashlib.sha256)
    response_digest: Any = field(default_factory=hashlib.sha256)
    status: str = "OK"
    error_code: str = ""
    decision: str = ""
    policy_ids: tuple[str, ...] = ()
    policy_version: str = ""
    withheld_fields: tuple[str, ...] = ()
    peer_gateway: str = ""
    trace_id: str = ""
    request_signature: bytes = b""
    response_signature: bytes = b""
    # (request parts, response parts) when payload archiving is on, else None: archiving off
    # costs one attribute test per body. The parts are references, sealed at audit time.
    bodies: tuple[list[bytes], list[bytes]] | None = None

    def add_request(self, body: bytes) -> None:
        self.request_size += len(body)
        self.request_digest.update(body)
        if self.bodies is not None:
            self.bodies[0].append(body)

    def add_response(self, body: bytes) -> None:
        self.response_size += len(body)
        self.response_digest.update(body)
        if self.bodies is not None:
            self.bodies[1].append(body)

    def fail(self, error: CrosswayError) -> None:
        self.status = error.status.name
        self.error_code = error.code

    def fail_status(self, status: grpc.StatusCode, code: str) -> None:
        self.status = status.name
        self.error_code = code

    def record(self, gateway: str) -> AuditRecord:
        return AuditRecord(
            record_id=os.urandom(16).hex(),
            gateway=gateway,
            side=self.side,
            message_id=self.message_id,
            client=self.client,
            service=self.service,
            method=self.method,
            user_id=self.user_id,
            purpose=self.purpose,
            request_in_ms=self.request_in_ms,
            request_out_ms=self.request_out_ms,
            response_in_ms=self.response_in_ms,
            response_out_ms=self.response_out_ms,
            request_size=self.request_size,
            response_size=self.response_size,
            request_sha256=self.request_digest.hexdigest(),
            response_sha256=self.response_digest.hexdigest(),
            status=self.status,
            error_code=self.error_code,
            decision=self.decision,
            policy_ids=self.policy_ids,
            withheld_fields=self.withheld_fields,
            peer_gateway=self.peer_gateway,
            trace_id=self.trace_id,
            request_signature=_b64(self.request_signature),
            response_signature=_b64(self.response_signature),
            policy_version=self.policy_version,
        )
