"""The admin port's ``crossway.v1.Admin`` service: read, diff, apply and roll back policy versions.

Applying (numbered steps, each failing closed; nothing invalid is ever published):
1. the caller's token has the ``policy-admin`` role                         → admin.*
2. the files validate against the methods this gateway serves               → policy.invalid
3. the next number is taken, the version signed and published over NATS
   (a concurrent apply that took the number first wins)                    → admin.conflict
4. this replica swaps it in (every replica does so from the same push)
5. the change is an audit event: who, when, version, digest of the diff
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from typing import Any

import grpc

from audit.trail import AuditRecord, AuditSink, new_record_id
from crossway.core.clock import Clock
from crossway.core.errors import CrosswayError, InternalError
from gateway.admin.auth import AdminAuthenticator, AdminIdentity, Permission
from gateway.admin.versions import NatsPolicyVersions, PolicyVersion, files_digest, unified_diff
from gateway.ports import abort_with
from gateway.provider.authorization import PolicyManager
from policies import PolicyInvalid
from protos.crossway.v1 import admin_pb2 as pb
from protos.crossway.v1 import admin_pb2_grpc

__all__ = ["AdminService", "audit_policy_change"]

log = logging.getLogger(__name__)

_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


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
    ) -> None:
        self._gateway = gateway_id
        self._auth = auth
        self._policies = policies
        self._versions = versions
        self._audit = audit
        self._clock = clock
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
        self, who: AdminIdentity, files: Mapping[str, str], summary: str, method: str, rollback_of: int = 0
    ) -> PolicyVersion:
        async with self._lock:
            current = self._versions.latest_number
            number = current + 1
            # 2. validate before anything is published (off the event loop: validation is slow)
            await asyncio.to_thread(self._policies.build, files, number)
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
            # 3–4. publish; returns once this replica has it in force
            await self._versions.publish(version)
            # 5. the audit event
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
        version: PolicyVersion = await self._run(
            context, self._apply(who, _files(request.files), request.summary, "ApplyPolicies")
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
            return await self._apply(who, target.files, summary, "RollbackPolicies", rollback_of=target.number)

        version: PolicyVersion = await self._run(context, work())
        return version.to_pb(with_files=False)
