"""Auditors' own reads, recorded in the audit log itself before they are answered.

Who searched for what, who took which evidence: the audit API is the one door to the index, so
it is where reads are recorded — a console, the CLI or any gRPC client goes through it. The
audit API has no log of its own (a log needs a signing identity the registry vouches for, and
its checkpoints a cosigner that knows it), so it asks a gateway — the auditors' agency's — to
write the record through that gateway's own audit pipeline: acknowledged JetStream publishing
with a spool, the gateway's Merkle log, checkpoints cosigned by the registry. The call is
``crossway.v1.Admin/RecordAuditRead`` **with the auditor's own token**: the gateway names the
auditor from a token it verified itself (role ``auditor``), so nobody can have a read recorded
in someone else's name, and the audit API holds no credential of its own.

The record is an ``auditor``-side record with its own message id (``audit-read:GATEWAY:ID``);
``crossway audit show`` prints it, ``audit verify`` proves it like any other.

Fail closed: a read that cannot be recorded is not answered (``audit.unavailable``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from audit.trail import AuditForbidden
from crossway.core.errors import AuditUnavailable, CrosswayError
from protos.crossway.v1 import admin_pb2, admin_pb2_grpc

__all__ = ["AuditorRead", "GatewayReadRecorder", "MemoryReadRecorder", "ReadRecorder"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AuditorRead:
    action: str  # the audit API method: Query, GetExchange, Evidence, Verify
    detail: str  # what was asked: canonical JSON of the filters, or a message id
    response_sha256: str = ""  # of what is handed out, when known before (an evidence bundle)


class ReadRecorder(Protocol):
    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    async def record(self, authorization: str, read: AuditorRead) -> str:
        """Record ``read`` for the holder of ``authorization`` (``Bearer …``); returns the
        record's message id. Raises a ``CrosswayError`` when it was not recorded."""
        ...


class MemoryReadRecorder:
    """The in-memory twin: keeps the reads (never the tokens) in a list."""

    def __init__(self) -> None:
        self.reads: list[AuditorRead] = []
        self.fail_with: CrosswayError | None = None  # tests: a recorder that is down

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def record(self, authorization: str, read: AuditorRead) -> str:
        if self.fail_with is not None:
            raise self.fail_with
        self.reads.append(read)
        return f"audit-read:memory:{len(self.reads)}"


class GatewayReadRecorder:
    """Records through a gateway's admin port (TLS, the registry CA), with the auditor's token."""

    def __init__(
        self, address: str, ca_pem: bytes, *, source: str, server_name: str = "", timeout_s: float = 5.0
    ) -> None:
        self._address = address
        self._ca = ca_pem
        self._source = source  # this audit API's name, the record's peer
        self._options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
        self._timeout = timeout_s
        self._channel: grpc.aio.Channel | None = None
        self._stub: Any = None

    async def start(self) -> None:
        self._channel = grpc.aio.secure_channel(
            self._address, grpc.ssl_channel_credentials(self._ca), options=self._options
        )
        self._stub = admin_pb2_grpc.AdminStub(self._channel)  # type: ignore[no-untyped-call]

    async def aclose(self) -> None:
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = None

    async def record(self, authorization: str, read: AuditorRead) -> str:
        if self._stub is None:
            raise AuditUnavailable("the auditors' read recorder is not started")
        request = admin_pb2.RecordAuditReadRequest(
            action=read.action, detail=read.detail, response_sha256=read.response_sha256, source=self._source
        )
        try:
            answer = await self._stub.RecordAuditRead(
                request, metadata=(("authorization", authorization),), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            pairs: Any = exc.trailing_metadata() or ()
            trailing = {str(k): str(v) for k, v in pairs}
            code = trailing.get("crossway-error", exc.code().name)
            log.warning("auditor read (%s) not recorded at %s: %s", read.action, self._address, code)
            if code in ("admin.forbidden", "admin.unauthenticated"):
                raise AuditForbidden(
                    f"the gateway that records auditors' reads refused your token ({code}): {exc.details()}",
                    hint="your token needs the auditor role at that gateway's admin identity provider",
                ) from exc
            raise AuditUnavailable(
                f"this read could not be recorded in the audit log ({code}), so it was not served",
                hint="the gateway that records auditors' reads is unreachable; try again when it is up",
            ) from exc
        return str(answer.message_id)
