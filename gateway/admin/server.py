"""The admin port's ``crossway.v1.Admin`` service: read, diff, apply and roll back policy versions;
answer access questions; report the gateway's status; record an auditor's read.

Applying (numbered steps, each failing closed; nothing invalid is ever published):
1. the caller's token has the ``policy-admin`` role                         → admin.*
2. the files validate against the methods this gateway serves               → policy.invalid
   (``validate_only`` stops here and answers with the version it would make)
3. the version in force is still the one the caller confirmed against,
   when it says which (``expected_current``)                               → admin.conflict
4. the next number is taken, the version signed and published over NATS
   (a concurrent apply that took the number first wins)                    → admin.conflict
5. this replica swaps it in (every replica does so from the same push)
6. the change is an audit event: who, when, version, digest of the diff

Recording an auditor's read (``RecordAuditRead``, asked by the audit API with the auditor's own
token — see ``audit.index.reads``):
1. the token has the ``auditor`` role: the record names the token's subject, nobody else → admin.*
2. the request is one the audit API makes (known action, bounded detail)   → audit.bad_request
3. this gateway's audit trail takes records                                → audit.unavailable
4. an ``auditor``-side record goes through the gateway's audit pipeline like any other.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

import grpc

from audit.trail import AuditBadRequest, AuditRecord, AuditSink, new_record_id
from crossway.core.clock import Clock
from crossway.core.errors import AdminConflict, AuditUnavailable, CrosswayError, InternalError, MethodUnknown
from crossway.core.ids import SubsystemId
from gateway.admin.auth import AdminAuthenticator, AdminIdentity, Permission
from gateway.admin.questions import AccessQuestion, describe_decision, quota_text
from gateway.admin.status import StatusSource
from gateway.admin.versions import NatsPolicyVersions, PolicyVersion, files_digest, unified_diff
from gateway.ports import abort_with
from gateway.provider.authorization import PolicyManager
from policies import CedarDecisionPoint, PolicyBundle, PolicyInvalid
from protos.crossway.v1 import admin_pb2 as pb
from protos.crossway.v1 import admin_pb2_grpc

__all__ = ["AdminService", "audit_policy_change"]

log = logging.getLogger(__name__)

_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# What the audit API asks to record (RecordAuditRead): its methods, a bounded description.
_AUDIT_ACTIONS = frozenset({"Query", "GetExchange", "Evidence", "Verify"})
_MAX_READ_DETAIL = 8192
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

GroupsOf = Callable[[SubsystemId], frozenset[str]]


def _files(entries: Any) -> dict[str, str]:
    return {f.name: f.text for f in entries}


def _summary(diff: str) -> str:
    added = sum(1 for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++"))
    removed = sum(1 for line in diff.splitlines() if line.startswith("-") and not line.startswith("---"))
    return f"+{added} -{removed} lines"


def audit_policy_change(audit: AuditSink, gateway: str, version: PolicyVersion, method: str) -> None:
    """Step 5: the change as an audit record of this gateway.

    The record uses the exchange record's schema: ``client`` is who applied it, ``service`` and
    ``method`` the admin call, ``policy_version`` the new number, ``request_sha256`` the digest
    of the diff and ``response_sha256`` the digest of the new files; ``purpose`` the summary.
    """
    audit.submit(
        AuditRecord(
            record_id=new_record_id(),
            gateway=gateway,
            side="admin",
            message_id=f"policy-change:{gateway}:v{version.number}",
            client=version.author,
            service="crossway.v1.Admin",
            method=method,
            user_id=version.author,
            purpose=version.summary,
            request_in_ms=version.created_at_ms,
            request_out_ms=version.created_at_ms,
            response_in_ms=version.created_at_ms,
            response_out_ms=version.created_at_ms,
            request_size=0,
            response_size=0,
            request_sha256=version.diff_digest,
            response_sha256=version.digest,
            status="OK",
            error_code="",
            decision="allow",
            policy_ids=(),
            withheld_fields=(),
            peer_gateway="",
            trace_id="",
            request_signature="",
            response_signature="",
            policy_version=f"v{version.number}",
        )
    )


class AdminService(admin_pb2_grpc.AdminServicer):
    def __init__(
        self,
        gateway_id: str,
        auth: AdminAuthenticator,
        policies: PolicyManager,
        versions: NatsPolicyVersions,
        audit: AuditSink,
        clock: Clock,
        *,
        status: StatusSource | None = None,
        groups_of: GroupsOf = lambda _client: frozenset(),
    ) -> None:
        self._gateway = gateway_id
        self._auth = auth
        self._policies = policies
        self._versions = versions
        self._audit = audit
        self._clock = clock
        self._status = status
        # The client's registry groups in the live configuration (what the provider pipeline uses).
        self._groups_of = groups_of
        self._lock = asyncio.Lock()  # one apply at a time on this replica

    # -- helpers -------------------------------------------------------------------------------

    async def _guard(self, context: grpc.aio.ServicerContext[Any, Any], need: Permission) -> AdminIdentity:
        try:
            return self._auth.check(context.invocation_metadata() or (), need)
        except CrosswayError as exc:
            log.warning("admin call refused: %s", exc.code)
            await abort_with(context, exc, "")
            raise  # unreachable

    def _version(self, number: int) -> PolicyVersion:
        if number == 0:
            files = self._policies.directory_files()
            return PolicyVersion(
                0, files, summary="policy directory", digest=files_digest(files), gateway=self._gateway
            )
        for version in self._versions.history:
            if version.number == number:
                return version
        raise PolicyInvalid(
            f"policy version {number} does not exist on {self._gateway}",
            hint="list versions with `crossway policy history`",
        )

    async def _run(self, context: grpc.aio.ServicerContext[Any, Any], work: Any) -> Any:
        try:
            return await work
        except CrosswayError as exc:
            await abort_with(context, exc, "")
        except TimeoutError:
            await abort_with(context, InternalError("the new policy version was not in force within 2 s"), "")

    async def _apply(
        self,
        who: AdminIdentity,
        files: Mapping[str, str],
        summary: str,
        method: str,
        rollback_of: int = 0,
        *,
        validate_only: bool = False,
        expected_current: int | None = None,
    ) -> PolicyVersion:
        async with self._lock:
            current = self._versions.latest_number
            number = current + 1
            # 2. validate before anything is published (off the event loop: validation is slow)
            await asyncio.to_thread(self._policies.build, files, number)
            # 3. still the version the caller confirmed against
            if expected_current is not None and expected_current != current:
                raise AdminConflict(
                    f"version {current} is in force, not version {expected_current} the change was confirmed against",
                    hint="look at the new version and its diff, then confirm again",
                )
            diff = unified_diff(self._policies.current_files(), files, f"v{current}", f"v{number}")
            version = PolicyVersion(
                number=number,
                files=dict(files),
                author=who.subject,
                created_at_ms=self._clock.now_ms(),
                summary=summary or _summary(diff),
                digest=files_digest(files),
                diff_digest=hashlib.sha256(diff.encode()).hexdigest() if diff else _EMPTY_SHA256,
                rollback_of=rollback_of,
                gateway=self._gateway,
            )
            if validate_only:
                return version
            # 4–5. publish; returns once this replica has it in force
            await self._versions.publish(version)
            # 6. the audit event
            audit_policy_change(self._audit, self._gateway, version, method)
            log.info("policy version %d applied by %s: %s", number, who.subject, version.summary)
            return version

    # -- the service ---------------------------------------------------------------------------

    async def GetPolicies(
        self, request: pb.GetPoliciesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.PolicyVersion:
        await self._guard(context, Permission.READ)

        async def work() -> pb.PolicyVersion:
            number = self._versions.latest_number if request.current else request.number
            return self._version(number).to_pb()

        result: pb.PolicyVersion = await self._run(context, work())
        return result

    async def DiffPolicies(
        self, request: pb.DiffPoliciesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.DiffPoliciesResponse:
        await self._guard(context, Permission.READ)
        current = self._versions.latest_number
        diff = unified_diff(self._policies.current_files(), _files(request.files), f"v{current}", "proposed")
        return pb.DiffPoliciesResponse(current=current, changed=bool(diff), diff=diff)

    async def ApplyPolicies(
        self, request: pb.ApplyPoliciesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.PolicyVersion:
        who = await self._guard(context, Permission.APPLY)
        expected = request.expected_current if request.HasField("expected_current") else None
        version: PolicyVersion = await self._run(
            context,
            self._apply(
                who,
                _files(request.files),
                request.summary,
                "ApplyPolicies",
                validate_only=request.validate_only,
                expected_current=expected,
            ),
        )
        return version.to_pb(with_files=False)

    async def ListPolicyVersions(
        self, request: pb.ListPolicyVersionsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListPolicyVersionsResponse:
        await self._guard(context, Permission.READ)
        versions = [self._version(0), *self._versions.history]
        return pb.ListPolicyVersionsResponse(
            versions=[v.to_pb(with_files=False) for v in versions], current=self._versions.latest_number
        )

    async def RollbackPolicies(
        self, request: pb.RollbackPoliciesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.PolicyVersion:
        who = await self._guard(context, Permission.APPLY)

        async def work() -> PolicyVersion:
            target = self._version(request.number)
            summary = request.summary or f"rollback to v{target.number}"
            expected = request.expected_current if request.HasField("expected_current") else None
            return await self._apply(
                who, target.files, summary, "RollbackPolicies", rollback_of=target.number, expected_current=expected
            )

        version: PolicyVersion = await self._run(context, work())
        return version.to_pb(with_files=False)

    async def TestAccess(
        self, request: pb.TestAccessRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.TestAccessResponse:
        await self._guard(context, Permission.READ)

        async def work() -> pb.TestAccessResponse:
            question = AccessQuestion(
                client=request.client,
                method=request.method,
                purpose=request.purpose,
                user_id=request.user_id,
                claims=dict(request.claims),
                groups=tuple(request.groups),
                time_ms=request.time_ms or self._clock.now_ms(),
            )
            access = question.request()
            access = dataclasses.replace(access, client_groups=access.client_groups | self._groups_of(access.client))
            # The live schema: the methods this gateway serves now (from the registry's descriptors).
            if access.method not in self._policies.methods:
                raise MethodUnknown(
                    f"{self._gateway} does not serve {access.method}",
                    hint="ask the gateway that provides the service, with the full method id SERVICE_ID/Method",
                )
            if request.files:
                files = _files(request.files)
                bundle = await asyncio.to_thread(
                    PolicyBundle.from_texts, files, self._policies.methods, version="proposed"
                )
                decision = CedarDecisionPoint(bundle).decide(access)
            else:
                decision = self._policies.decide(access)
            return pb.TestAccessResponse(
                allowed=decision.allowed,
                policy_ids=decision.policy_ids,
                reason=decision.reason,
                errors=decision.errors,
                policy_version=decision.policy_version,
                summary=describe_decision(decision),
                fields=sorted(decision.fields or ()),
                all_fields=decision.allowed and decision.fields is None,
                quotas=quota_text(decision),
                groups=sorted(access.client_groups),
            )

        result: pb.TestAccessResponse = await self._run(context, work())
        return result

    async def GetStatus(
        self, request: pb.GetStatusRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GatewayStatus:
        await self._guard(context, Permission.READ)
        if self._status is None:
            await abort_with(context, InternalError("this gateway process does not report its status"), "")
        return self._status().to_pb()

    async def RecordAuditRead(
        self, request: pb.RecordAuditReadRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.RecordAuditReadResponse:
        who = await self._guard(context, Permission.RECORD_READ)  # 1.

        async def work() -> pb.RecordAuditReadResponse:
            # 2. what the audit API asks, and nothing bigger
            if request.action not in _AUDIT_ACTIONS or len(request.detail) > _MAX_READ_DETAIL:
                raise AuditBadRequest(f"not a read the audit API records: action {request.action[:40]!r}")
            if request.response_sha256 and not _SHA256_HEX.fullmatch(request.response_sha256):
                raise AuditBadRequest("response_sha256 is not a SHA-256 in hex")
            # 3. fail closed: the audit API refuses the read when it cannot be recorded
            if not self._audit.writable:
                raise AuditUnavailable(f"the audit trail of {self._gateway} takes no records now")
            record_id = new_record_id()
            message_id = f"audit-read:{self._gateway}:{record_id}"
            now = self._clock.now_ms()
            detail = request.detail.encode()
            # 4. the record: who (from the verified token), what, when; what was handed out
            self._audit.submit(
                AuditRecord(
                    record_id=record_id,
                    gateway=self._gateway,
                    side="auditor",
                    message_id=message_id,
                    client=who.subject,
                    service="crossway.v1.Audit",
                    method=request.action,
                    user_id=who.subject,
                    purpose=request.detail,
                    request_in_ms=now,
                    request_out_ms=now,
                    response_in_ms=now,
                    response_out_ms=now,
                    request_size=len(detail),
                    response_size=0,
                    request_sha256=hashlib.sha256(detail).hexdigest(),
                    response_sha256=request.response_sha256,
                    status="OK",
                    error_code="",
                    decision="allow",
                    policy_ids=(),
                    withheld_fields=(),
                    peer_gateway=request.source[:200],
                    trace_id="",
                    request_signature="",
                    response_signature="",
                )
            )
            log.info("auditor read recorded: %s %s by %s", message_id, request.action, who.subject)
            return pb.RecordAuditReadResponse(message_id=message_id, record_id=record_id)

        result: pb.RecordAuditReadResponse = await self._run(context, work())
        return result
