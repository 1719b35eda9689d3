"""The audit gRPC API (``crossway audit serve``, a real subprocess over TLS): who sees what."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from audit.index import open_store
from audit.trail.samples import sample_record
from protos.crossway.v1 import audit_pb2 as pb
from protos.crossway.v1 import audit_pb2_grpc as pb_grpc
from registry import RegistryAuthority
from tests.integration.audit_api import AuditApiProcess

pytestmark = pytest.mark.asyncio(loop_scope="module")

TAX, POPULATION, BUSINESS = "EE/GOV/70000001", "EE/GOV/70000002", "EE/GOV/70000003"
SERVICE = f"{POPULATION}/population/population.v1.PersonRegistry"


def _build_index(path: str) -> None:
    """Six exchanges tax → population and four business → population, both sides each."""
    items: list[tuple[int, str, bytes]] = []
    for n in range(10):
        caller = TAX if n < 6 else BUSINESS
        client = sample_record(n, gateway=f"{caller}/gw1", client=f"{caller}/app", service=SERVICE)
        provider = sample_record(
            n, gateway=f"{POPULATION}/gw1", client=f"{caller}/app", service=SERVICE, side="provider"
        )
        for record in (client, provider):
            items.append((len(items) + 1, record.gateway, record.to_json()))
    store = open_store(path)
    try:
        store.ingest("records", items, {})
    finally:
        store.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AuditApiProcess]:
    work = tmp_path_factory.mktemp("audit-api")
    index = str(work / "audit.sqlite")
    _build_index(index)
    RegistryAuthority.init(work / "registry", "EE").close()
    server = AuditApiProcess(work / "api", index, str(work / "registry" / "anchor.json"))
    await server.start()
    try:
        yield server
    finally:
        await server.aclose()


def _md(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def _query(api: AuditApiProcess, token: str, **filters: str) -> list[dict[str, object]]:
    async with api.channel() as channel:
        stub = pb_grpc.AuditStub(channel)
        call = stub.Query(pb.AuditQueryRequest(filters=pb.AuditFilters(**filters)), metadata=_md(token), timeout=10)
        return [json.loads(e.record_json) async for e in call]


def _error_code(exc: grpc.aio.AioRpcError) -> str:
    return str(dict(exc.trailing_metadata() or ()).get("crossway-error", ""))


async def test_an_auditor_token_sees_every_agencys_exchanges(api: AuditApiProcess) -> None:
    records = await _query(api, api.token("alice", ["auditor"]))
    assert len(records) == 20
    assert {str(r["client"]).rsplit("/", 1)[0] for r in records} == {TAX, BUSINESS}
    async with api.channel() as channel:
        stub = pb_grpc.AuditStub(channel)
        joined = await stub.GetExchange(
            pb.GetExchangeRequest(message_id="msg-00000007"), metadata=_md(api.token("alice", ["auditor"]))
        )
    assert json.loads(joined.client.record_json)["side"] == "client"
    assert json.loads(joined.provider.record_json)["side"] == "provider"
    assert joined.client.gateway == f"{BUSINESS}/gw1" and list(joined.disagreements) == []


async def test_an_agency_token_sees_only_the_exchanges_its_agency_took_part_in(api: AuditApiProcess) -> None:
    token = api.token("tax-auditor", ["auditor"], member=TAX)
    records = await _query(api, token)
    assert len(records) == 12
    assert all(str(r["client"]).startswith(TAX + "/") for r in records)
    assert await _query(api, token, client=f"{BUSINESS}/app") == []
    async with api.channel() as channel:
        stub = pb_grpc.AuditStub(channel)
        await stub.GetExchange(pb.GetExchangeRequest(message_id="msg-00000002"), metadata=_md(token))
        # Another agency's exchange is answered exactly like one that does not exist.
        for message_id in ("msg-00000007", "msg-99999999"):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.GetExchange(pb.GetExchangeRequest(message_id=message_id), metadata=_md(token))
            assert refused.value.code() == grpc.StatusCode.NOT_FOUND and _error_code(refused.value) == "audit.not_found"
        with pytest.raises(grpc.aio.AioRpcError) as evidence:
            await stub.Evidence(pb.AuditEvidenceRequest(message_id="msg-00000008"), metadata=_md(token))
        assert evidence.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as verify:
            async for _ in stub.Verify(pb.AuditVerifyRequest(), metadata=_md(token)):
                pass
        assert (
            verify.value.code() == grpc.StatusCode.PERMISSION_DENIED and _error_code(verify.value) == "audit.forbidden"
        )
    # The provider agency sees every exchange made with it.
    assert len(await _query(api, api.token("pop-auditor", ["auditor"], member=POPULATION))) == 20


@pytest.mark.parametrize(
    ("roles", "member", "status", "code"),
    [
        (["observer"], None, grpc.StatusCode.PERMISSION_DENIED, "audit.forbidden"),
        ([], None, grpc.StatusCode.PERMISSION_DENIED, "audit.forbidden"),
        (["auditor"], "not a member id", grpc.StatusCode.PERMISSION_DENIED, "audit.forbidden"),
    ],
)
async def test_a_token_without_the_auditor_role_or_with_a_bad_scope_is_refused_with_a_clear_code(
    api: AuditApiProcess, roles: list[str], member: str | None, status: grpc.StatusCode, code: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _query(api, api.token("mallory", roles, member))
    assert refused.value.code() == status and _error_code(refused.value) == code
    assert "auditor" in (refused.value.details() or "") or "member" in (refused.value.details() or "")


async def test_no_token_or_a_forged_one_is_unauthenticated(api: AuditApiProcess) -> None:
    async with api.channel() as channel:
        stub = pb_grpc.AuditStub(channel)
        for metadata in ((), _md("e30.e30.c2ln")):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.GetExchange(pb.GetExchangeRequest(message_id="msg-00000001"), metadata=metadata)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert _error_code(refused.value) == "audit.unauthenticated"


async def test_verify_streams_each_finding_then_a_summary(api: AuditApiProcess, tmp_path: Path) -> None:
    async with api.channel() as channel:
        stub = pb_grpc.AuditStub(channel)
        events = [e async for e in stub.Verify(pb.AuditVerifyRequest(), metadata=_md(api.token("alice", ["auditor"])))]
    *findings, summary = events
    # These sample records were never checkpointed: each gateway's log is named as unproven.
    assert {f.finding.kind for f in findings} >= {"checkpoint"}
    assert summary.WhichOneof("event") == "summary"
    assert not summary.summary.intact and summary.summary.records == 20
    assert summary.summary.findings == len(findings)


async def _page(
    api: AuditApiProcess, token: str, limit: int, page_token: str = "", **filters: str
) -> list[pb.AuditEntry]:
    async with api.channel() as channel:
        stub = pb_grpc.AuditStub(channel)
        request = pb.AuditQueryRequest(filters=pb.AuditFilters(**filters), limit=limit, page_token=page_token)
        return [e async for e in stub.Query(request, metadata=_md(token), timeout=10)]


async def test_query_pages_with_the_token_of_the_last_entry_and_misses_or_repeats_nothing(
    api: AuditApiProcess,
) -> None:
    token = api.token("alice", ["auditor"])
    everything = [e.record_json for e in await _page(api, token, 0)]
    seen: list[str] = []
    page_token = ""
    while True:
        page = await _page(api, token, 3, page_token)
        seen += [e.record_json for e in page]
        if len(page) < 3:
            break
        page_token = page[-1].next_page_token
    assert seen == everything and len(seen) == 20
    # Every entry carries its own token: a broken stream resumes right after the last entry it got.
    resumed = await _page(api, token, 0, (await _page(api, token, 5))[4].next_page_token)
    assert [e.record_json for e in resumed] == everything[5:]


async def test_a_page_token_of_another_query_or_a_garbled_one_is_refused(api: AuditApiProcess) -> None:
    token = api.token("alice", ["auditor"])
    first = await _page(api, token, 2)
    for page_token, filters in ((first[-1].next_page_token, {"client": f"{TAX}/app"}), ("not-a-token", {})):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _page(api, token, 2, page_token, **filters)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert _error_code(refused.value) == "audit.bad_request"
    # A scoped auditor's token is bound to its scope too: it cannot continue an unscoped query.
    scoped = api.token("tax-auditor", ["auditor"], member=TAX)
    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await _page(api, scoped, 2, first[-1].next_page_token)
    assert _error_code(foreign.value) == "audit.bad_request"
