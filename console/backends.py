"""The console's way to the gateways' admin ports and the audit index's API — with the user's token.

Every call carries the signed-in user's own bearer token and nothing else: the console has no
credential of its own, so it can do exactly what the user could do with the CLI, and every role
check stays in the API that owns it. One TLS channel per endpoint is shared by all users (the
token is per call, in metadata). Errors come back as ``ApiError`` with the API's stable code, its
message and its hint — what the CLI prints as ``error[code]: message`` / ``hint:``.

Wire types stop here: the pages get plain values (dicts of records, dataclasses).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from console.config import ApiEndpoint
from protos.crossway.v1 import admin_pb2, admin_pb2_grpc, audit_pb2, audit_pb2_grpc

__all__ = ["AdminClient", "ApiError", "AuditClient", "Backends", "Entry", "Exchange", "Proof"]

TIMEOUT_S = 15.0


class ApiError(Exception):
    """An API refused or failed; ``code`` is its stable crossway-error code when it sent one."""

    def __init__(self, code: str, message: str, hint: str = "", status: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.hint, self.status = code, message, hint, status

    @property
    def forbidden(self) -> bool:
        return self.status in ("PERMISSION_DENIED", "UNAUTHENTICATED")


def _error(exc: grpc.aio.AioRpcError, where: str) -> ApiError:
    pairs: Any = exc.trailing_metadata() or ()
    trailing = {str(k): str(v) for k, v in pairs}
    code = trailing.get("crossway-error", "")
    details = str(exc.details() or "")
    if code:
        # "provider gateway: policy.invalid: population.cedar:9: …" → the message after the code
        message = details.split(f"{code}: ", 1)[-1]
        return ApiError(code, message, trailing.get("crossway-hint", ""), exc.code().name)
    if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return ApiError(
            "console.unreachable", f"{where} did not answer ({exc.code().name})", "is it running?", exc.code().name
        )
    return ApiError(exc.code().name.lower(), f"{where}: {details}", "", exc.code().name)


def _md(bearer: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", bearer),)


def _channel(endpoint: ApiEndpoint) -> grpc.aio.Channel:
    options = [("grpc.ssl_target_name_override", endpoint.server_name)] if endpoint.server_name else []
    return grpc.aio.secure_channel(
        endpoint.address, grpc.ssl_channel_credentials(endpoint.ca.read_bytes()), options=options
    )


# -- the audit API --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    gateway: str
    leaf_index: int
    record: Mapping[str, Any]
    next_page_token: str = ""


@dataclass(frozen=True, slots=True)
class Proof:
    side: str
    gateway: str
    leaf_index: int
    checkpoint_size: int
    checkpoint_time_ms: int
    cosigners: tuple[str, ...]
    verified: bool
    problem: str


@dataclass(frozen=True, slots=True)
class Exchange:
    message_id: str
    sides: Mapping[str, Entry]  # client, provider, admin, auditor: those present
    disagreements: tuple[str, ...] = ()
    proofs: tuple[Proof, ...] = field(default=())


def _entry(e: audit_pb2.AuditEntry) -> Entry:
    return Entry(e.gateway, e.leaf_index, json.loads(e.record_json), e.next_page_token)


class AuditClient:
    def __init__(self, endpoint: ApiEndpoint) -> None:
        self.endpoint = endpoint
        self._channel = _channel(endpoint)
        self._stub = audit_pb2_grpc.AuditStub(self._channel)  # type: ignore[no-untyped-call]

    async def aclose(self) -> None:
        await self._channel.close(None)

    async def query(self, bearer: str, filters: Mapping[str, Any], limit: int, page_token: str = "") -> list[Entry]:
        request = audit_pb2.AuditQueryRequest(
            filters=audit_pb2.AuditFilters(**filters), limit=limit, page_token=page_token
        )
        try:
            return [_entry(e) async for e in self._stub.Query(request, metadata=_md(bearer), timeout=TIMEOUT_S)]
        except grpc.aio.AioRpcError as exc:
            raise _error(exc, "the audit API") from exc

    async def exchange(self, bearer: str, message_id: str) -> Exchange:
        try:
            answer = await self._stub.GetExchange(
                audit_pb2.GetExchangeRequest(message_id=message_id), metadata=_md(bearer), timeout=TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            raise _error(exc, "the audit API") from exc
        sides = {
            name: _entry(getattr(answer, name))
            for name in ("client", "provider", "admin", "auditor")
            if answer.HasField(name)
        }
        proofs = tuple(
            Proof(
                p.side,
                p.gateway,
                p.leaf_index,
                p.checkpoint_size,
                p.checkpoint_time_ms,
                tuple(p.cosigners),
                p.verified,
                p.problem,
            )
            for p in answer.inclusions
        )
        return Exchange(answer.message_id, sides, tuple(answer.disagreements), proofs)

    async def evidence(self, bearer: str, message_id: str) -> bytes:
        try:
            answer = await self._stub.Evidence(
                audit_pb2.AuditEvidenceRequest(message_id=message_id), metadata=_md(bearer), timeout=60.0
            )
        except grpc.aio.AioRpcError as exc:
            raise _error(exc, "the audit API") from exc
        return bytes(answer.bundle)


# -- a gateway's admin port -----------------------------------------------------------------------


class AdminClient:
    def __init__(self, endpoint: ApiEndpoint) -> None:
        self.endpoint = endpoint
        self.name = endpoint.name
        self._channel = _channel(endpoint)
        self._stub = admin_pb2_grpc.AdminStub(self._channel)  # type: ignore[no-untyped-call]

    async def aclose(self) -> None:
        await self._channel.close(None)

    async def _call(self, method: str, request: Any, bearer: str) -> Any:
        try:
            return await getattr(self._stub, method)(request, metadata=_md(bearer), timeout=TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise _error(exc, f"the admin port of {self.name}") from exc

    async def versions(self, bearer: str) -> admin_pb2.ListPolicyVersionsResponse:
        answer: admin_pb2.ListPolicyVersionsResponse = await self._call(
            "ListPolicyVersions", admin_pb2.ListPolicyVersionsRequest(), bearer
        )
        return answer

    async def files(self, bearer: str, number: int | None = None) -> tuple[int, dict[str, str]]:
        """The files of version ``number`` (None: the version in force) and its number."""
        request = admin_pb2.GetPoliciesRequest(current=number is None, number=number or 0)
        version: admin_pb2.PolicyVersion = await self._call("GetPolicies", request, bearer)
        return version.number, {f.name: f.text for f in version.files}

    async def diff(self, bearer: str, files: Mapping[str, str]) -> admin_pb2.DiffPoliciesResponse:
        request = admin_pb2.DiffPoliciesRequest(files=_pb_files(files))
        answer: admin_pb2.DiffPoliciesResponse = await self._call("DiffPolicies", request, bearer)
        return answer

    async def apply(
        self, bearer: str, files: Mapping[str, str], summary: str, *, validate_only: bool, expected_current: int
    ) -> admin_pb2.PolicyVersion:
        request = admin_pb2.ApplyPoliciesRequest(
            files=_pb_files(files), summary=summary, validate_only=validate_only, expected_current=expected_current
        )
        answer: admin_pb2.PolicyVersion = await self._call("ApplyPolicies", request, bearer)
        return answer

    async def rollback(self, bearer: str, number: int, summary: str, expected_current: int) -> admin_pb2.PolicyVersion:
        request = admin_pb2.RollbackPoliciesRequest(number=number, summary=summary, expected_current=expected_current)
        answer: admin_pb2.PolicyVersion = await self._call("RollbackPolicies", request, bearer)
        return answer

    async def test_access(
        self,
        bearer: str,
        *,
        client: str,
        method: str,
        purpose: str = "",
        user_id: str = "",
        claims: Mapping[str, str] | None = None,
        groups: Sequence[str] = (),
    ) -> admin_pb2.TestAccessResponse:
        request = admin_pb2.TestAccessRequest(
            client=client,
            method=method,
            purpose=purpose,
            user_id=user_id,
            claims=dict(claims or {}),
            groups=list(groups),
        )
        answer: admin_pb2.TestAccessResponse = await self._call("TestAccess", request, bearer)
        return answer

    async def status(self, bearer: str) -> admin_pb2.GatewayStatus:
        answer: admin_pb2.GatewayStatus = await self._call("GetStatus", admin_pb2.GetStatusRequest(), bearer)
        return answer


def _pb_files(files: Mapping[str, str]) -> list[admin_pb2.PolicyFile]:
    return [admin_pb2.PolicyFile(name=n, text=t) for n, t in sorted(files.items())]


class Backends:
    """Owns the channels; made inside the running event loop (grpc.aio channels belong to one)."""

    def __init__(self, audit: ApiEndpoint | None, gateways: Sequence[ApiEndpoint]) -> None:
        self.audit = AuditClient(audit) if audit is not None else None
        self.gateways = {g.name: AdminClient(g) for g in gateways}

    def gateway(self, name: str) -> AdminClient:
        client = self.gateways.get(name)
        if client is None:
            raise ApiError(
                "console.unknown_gateway", f"no gateway named {name!r} is configured", "pick one from the list"
            )
        return client

    async def aclose(self) -> None:
        if self.audit is not None:
            await self.audit.aclose()
        for client in self.gateways.values():
            await client.aclose()
