"""The ``crossway.v1.Audit`` gRPC service over the index: query, one exchange, verify, evidence.

Every call (numbered, failing closed):
1. the caller is an auditor (``AuditAuthenticator``: token, role, optional member scope);
2. a member-scoped caller's filters are narrowed to that member (``Filters.member``): it sees
   the exchanges its agency took part in and nothing else — another agency's message id is
   answered exactly like one that does not exist (audit.not_found), so existence does not leak;
3. ``Verify`` reads every gateway's whole log, so it needs an unscoped auditor;
4. with a read recorder (``audit.index.reads``), the read is recorded in the audit log before
   it is answered — who searched for what, who took which evidence — or it is not answered.

Wire types stop here: requests become ``Filters``, rows go out as their exact JSON (the bytes the
Merkle leaves hash, so a client can check them). Each call opens the index in a worker thread
(SQLite and psycopg connections are blocking) and closes it when done. ``Query`` pages by keyset
(``audit.index.paging``): every entry carries the token that continues after it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, NoReturn, TypeVar

import grpc
from cryptography.hazmat.primitives.asymmetric import ed25519

from audit.index.auth import AuditAuthenticator, AuditorIdentity
from audit.index.evidence import build_evidence
from audit.index.inclusion import prove_rows
from audit.index.paging import decode_page_token, encode_page_token
from audit.index.reads import AuditorRead, ReadRecorder
from audit.index.store import Filters, IndexStore, Position, Row, open_store
from audit.index.verify import compare_sides, verify_index
from audit.trail import AuditForbidden, AuditNotFound
from crossway.core.errors import CrosswayError
from crossway.natsclient import NatsAccess
from protos.crossway.v1 import audit_pb2 as pb
from protos.crossway.v1 import audit_pb2_grpc

__all__ = ["MAX_PAGE", "AuditApi", "AuditServer"]

log = logging.getLogger(__name__)

MAX_PAGE = 10_000  # records per Query call at most
_CHUNK = 500  # rows read from the index per round trip while streaming

T = TypeVar("T")


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: CrosswayError) -> NoReturn:
    # The same trailing metadata as the gateways' errors: crossway-error (code) and crossway-hint.
    trailing = (("crossway-error", error.code), ("crossway-hint", error.hint.encode("ascii", "replace").decode()))
    await context.abort(error.status, error.details(), trailing_metadata=trailing)
    raise AssertionError("unreachable: abort raises")  # pragma: no cover


def _filters(f: pb.AuditFilters, who: AuditorIdentity) -> Filters:
    return Filters(
        since_ms=f.since_ms or None,
        until_ms=f.until_ms or None,
        client=f.client,
        service=f.service,
        method=f.method,
        user_id=f.user_id,
        status=f.status,
        decision=f.decision,
        message_id=f.message_id,
        member=who.member,  # 2. "" for an unscoped auditor
    )


def _entry(row: Row, next_page_token: str = "") -> pb.AuditEntry:
    return pb.AuditEntry(
        gateway=row.gateway, leaf_index=row.leaf_index, record_json=row.body, next_page_token=next_page_token
    )


def _query_detail(filters: Filters, after: Position | None) -> str:
    """What a search asked, for the record of the read: the filters set, the scope, the page."""
    doc: dict[str, Any] = {k: v for k, v in dataclasses.asdict(filters).items() if v not in ("", None, ())}
    if after is not None:
        doc["after"] = list(after)
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def _authorization(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    for key, value in context.invocation_metadata() or ():
        if key.lower() == "authorization" and isinstance(value, str):
            return value
    return ""


class AuditApi(audit_pb2_grpc.AuditServicer):
    def __init__(
        self,
        index_url: str,
        auth: AuditAuthenticator,
        cosigners: Mapping[str, ed25519.Ed25519PublicKey],
        quorum: int = 1,
        *,
        reads: ReadRecorder | None = None,
    ) -> None:
        self._index = index_url
        self._auth = auth
        self._cosigners = dict(cosigners)
        self._quorum = quorum  # distinct witnesses a checkpoint needs (the registry configuration's)
        self._reads = reads

    async def _guard(self, context: grpc.aio.ServicerContext[Any, Any], method: str) -> AuditorIdentity:
        try:
            who = self._auth.check(context.invocation_metadata() or ())
        except CrosswayError as exc:
            log.warning("audit API %s refused: %s", method, exc.code)
            await _abort(context, exc)
        log.info("audit API %s by %s%s", method, who.subject, f" (scope {who.member})" if who.scoped else "")
        return who

    async def start(self) -> None:
        if self._reads is not None:
            await self._reads.start()

    async def aclose(self) -> None:
        if self._reads is not None:
            await self._reads.aclose()

    async def _record(self, context: grpc.aio.ServicerContext[Any, Any], read: AuditorRead) -> None:
        """4. The read into the audit log before the answer; not recorded → not answered."""
        if self._reads is None:
            return
        try:
            await self._reads.record(_authorization(context), read)
        except CrosswayError as exc:
            await _abort(context, exc)

    async def _read(self, context: grpc.aio.ServicerContext[Any, Any], work: Callable[[IndexStore], T]) -> T:
        def run() -> T:
            store = open_store(self._index)
            try:
                return work(store)
            finally:
                store.close()

        try:
            return await asyncio.to_thread(run)
        except CrosswayError as exc:
            await _abort(context, exc)

    async def Query(
        self, request: pb.AuditQueryRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.AuditEntry]:
        who = await self._guard(context, "Query")
        filters = _filters(request.filters, who)
        limit = min(request.limit or MAX_PAGE, MAX_PAGE)
        after: Position | None = None
        if request.page_token:
            try:
                after = decode_page_token(request.page_token, filters)
            except CrosswayError as exc:
                await _abort(context, exc)
        await self._record(context, AuditorRead("Query", _query_detail(filters, after)))
        sent = 0
        while sent < limit:
            size = min(_CHUNK, limit - sent)
            rows = await self._read(context, self._page(filters, after, size))
            for row in rows:
                yield _entry(row, encode_page_token(row.position, filters))
            sent += len(rows)
            if len(rows) < size:
                return
            after = rows[-1].position

    @staticmethod
    def _page(filters: Filters, after: Position | None, size: int) -> Callable[[IndexStore], list[Row]]:
        return lambda store: store.query(filters, limit=size, after=after)

    async def GetExchange(
        self, request: pb.GetExchangeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.AuditExchange:
        who = await self._guard(context, "GetExchange")
        await self._record(context, AuditorRead("GetExchange", request.message_id))
        rows = await self._exchange(context, request.message_id, who)
        by_side = {r.record().side: r for r in rows}
        answer = pb.AuditExchange(message_id=request.message_id)
        client, provider = by_side.get("client"), by_side.get("provider")
        if client is not None:
            answer.client.CopyFrom(_entry(client))
        if provider is not None:
            answer.provider.CopyFrom(_entry(provider))
        if client is not None and provider is not None:
            answer.disagreements.extend(compare_sides(client.record(), provider.record()))
        if "admin" in by_side:
            answer.admin.CopyFrom(_entry(by_side["admin"]))
        if "auditor" in by_side:
            answer.auditor.CopyFrom(_entry(by_side["auditor"]))
        proven = await self._read(context, lambda s: prove_rows(s, rows, self._cosigners, self._quorum))
        answer.inclusions.extend(
            pb.AuditInclusion(
                side=p.side,
                gateway=p.gateway,
                leaf_index=p.leaf_index,
                checkpoint_size=p.checkpoint_size,
                checkpoint_time_ms=p.checkpoint_time_ms,
                cosigners=p.cosigners,
                verified=p.verified,
                problem=p.problem,
            )
            for p in proven
        )
        return answer

    async def _exchange(
        self, context: grpc.aio.ServicerContext[Any, Any], message_id: str, who: AuditorIdentity
    ) -> list[Row]:
        filters = Filters(message_id=message_id, member=who.member)
        rows = await self._read(context, lambda s: s.query(filters, limit=16)) if message_id else []
        if not rows:
            await _abort(context, AuditNotFound(f"no audit record of message {message_id or '(none)'} visible to you"))
        return rows

    async def Verify(
        self, request: pb.AuditVerifyRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.AuditVerifyEvent]:
        who = await self._guard(context, "Verify")
        await self._record(context, AuditorRead("Verify", ""))
        if who.scoped:  # 3.
            await _abort(
                context,
                AuditForbidden(
                    f"{who.subject} is scoped to {who.member}; verify reads every agency's log",
                    hint="ask for evidence of your own exchanges (Evidence), or use an unscoped auditor token",
                ),
            )
        report = await self._read(context, lambda s: verify_index(s, self._cosigners, quorum=self._quorum))
        for f in report.findings:
            yield pb.AuditVerifyEvent(
                finding=pb.AuditFinding(
                    kind=f.kind,
                    gateway=f.gateway,
                    detail=f.detail,
                    record_id=f.record_id,
                    leaf_index=f.leaf_index,
                    message_id=f.message_id,
                )
            )
        yield pb.AuditVerifyEvent(
            summary=pb.AuditVerifySummary(
                intact=report.ok, records=report.records, findings=len(report.findings), covered=dict(report.covered)
            )
        )

    async def Evidence(
        self, request: pb.AuditEvidenceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.AuditEvidence:
        who = await self._guard(context, "Evidence")
        await self._exchange(context, request.message_id, who)  # 2. in scope, or not found
        bundle = await self._read(
            context, lambda s: build_evidence(s, request.message_id, self._cosigners, quorum=self._quorum)
        )
        # 4. who took which evidence: the bundle's digest is in the record, so it can be matched later
        digest = hashlib.sha256(bundle).hexdigest()
        await self._record(context, AuditorRead("Evidence", request.message_id, digest))
        return pb.AuditEvidence(message_id=request.message_id, bundle=bundle)


class AuditServer:
    """The API on one TLS port; ``start()`` binds (port 0 allowed), ``aclose()`` drains."""

    def __init__(self, api: AuditApi, listen: str, tls_key_pem: bytes, tls_cert_pem: bytes) -> None:
        self._api = api
        self._listen = listen
        self._pair = (tls_key_pem, tls_cert_pem)
        self._server: Any = None
        self.port = 0

    async def start(self) -> None:
        await self._api.start()
        server: Any = grpc.aio.server()
        audit_pb2_grpc.add_AuditServicer_to_server(self._api, server)  # type: ignore[no-untyped-call]
        self.port = server.add_secure_port(self._listen, grpc.ssl_server_credentials([self._pair]))
        await server.start()
        self._server = server

    async def aclose(self, grace_s: float = 5.0) -> None:
        if self._server is not None:
            await self._server.stop(grace_s)
            self._server = None
        await self._api.aclose()


async def serve(
    index_url: str,
    listen: str,
    tls_key_pem: bytes,
    tls_cert_pem: bytes,
    auth: AuditAuthenticator,
    cosigners: Mapping[str, ed25519.Ed25519PublicKey],
    *,
    nats: NatsAccess | None = None,
    reads: ReadRecorder | None = None,
    ready: Callable[[int], None] = lambda port: None,
    quorum: int = 1,
) -> None:
    """``crossway audit serve``: the API (and, with ``nats``, the indexer) until SIGTERM/SIGINT."""
    import signal

    from audit.index.indexer import AuditIndexer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    indexer_store = open_store(index_url) if nats is not None else None
    indexer = AuditIndexer(nats, indexer_store) if nats is not None and indexer_store is not None else None
    server = AuditServer(AuditApi(index_url, auth, cosigners, quorum, reads=reads), listen, tls_key_pem, tls_cert_pem)
    try:
        if indexer is not None:
            await indexer.start()
        await server.start()
        ready(server.port)
        await stop.wait()
    finally:
        await server.aclose()  # drains calls in flight
        if indexer is not None:
            await indexer.aclose()
        if indexer_store is not None:
            indexer_store.close()
