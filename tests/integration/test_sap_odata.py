"""The SAP OData V2 adapter against a real SAP CAP server, through both gateways.

An agency system of "tax" calls business.v1.BusinessRegister with the generated stubs through
its gateway; the business register's gateway maps each call onto OData V2 operations of a CAP
server (started once for this module, on loopback, with SAP Gateway's CSRF rules emulated).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio
from google.protobuf.timestamp_pb2 import Timestamp

from crossway.core.ids import ServiceId
from crossway.demo.business import ARCHIVE_SERVICE, BUSINESS_SERVICE
from crossway.demo.federation import TAX_SUBSYSTEM, Federation
from crossway.demo.sapcap import CapServer
from gateway.wire.metadata import metadata_text
from protos.demo.business.v1 import business_pb2 as pb
from protos.demo.business.v1 import business_pb2_grpc as pb_grpc
from tests.integration.sap_cap import control, start_cap_server

pytestmark = pytest.mark.asyncio(loop_scope="module")

TALLINNA_VESI = "0f8fad5b-d9cb-469f-a165-70867728950e"
CALLER_TRACE = "5b8aa5a2d2c872e8321cf37308d69df2"
OFFICIAL = "EE38001085718"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cap() -> AsyncIterator[CapServer]:
    server = await start_cap_server()
    try:
        yield server
    finally:
        await server.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fed(cap: CapServer, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    async with Federation(tmp_path_factory.mktemp("sap-federation"), sap_service_url=cap.service_url) as federation:
        yield federation


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stub(fed: Federation) -> AsyncIterator[pb_grpc.BusinessRegisterStub]:
    async with fed.channel() as channel:
        yield pb_grpc.BusinessRegisterStub(channel)


def md(fed: Federation, service: ServiceId = BUSINESS_SERVICE) -> tuple[tuple[str, str], ...]:
    # Two subsystems offer the service (the archive's SAP is down): name the provider.
    return (
        ("authorization", f"Bearer {fed.token()}"),
        ("crossway-purpose", "tax-assessment"),
        ("crossway-service", str(service.subsystem)),
    )


async def test_reads_a_company_by_key_with_guid_decimal_and_datetime_converted(
    fed: Federation, stub: pb_grpc.BusinessRegisterStub
) -> None:
    company = await stub.GetCompany(pb.GetCompanyRequest(id=TALLINNA_VESI), metadata=md(fed), timeout=15)
    assert (company.id, company.registry_code, company.name) == (TALLINNA_VESI, "10000001", "Tallinna Vesi AS")
    assert company.share_capital == "20000000.00"
    assert company.registered_at.ToJsonString() == "1997-01-15T10:00:00Z"


async def test_queries_with_a_filter_and_pages_through_the_results(
    fed: Federation, stub: pb_grpc.BusinessRegisterStub
) -> None:
    names: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await stub.ListCompanies(
            pb.ListCompaniesRequest(city="Tallinn", status="ACTIVE", page_size=2, page_token=token),
            metadata=md(fed),
            timeout=15,
        )
        pages += 1
        names += [c.name for c in page.companies]
        assert all(c.city == "Tallinn" for c in page.companies)
        token = page.next_page_token
        if not token:
            break
    assert sorted(names) == ["Harju Ehitus OÜ", "Tallinna Sadam AS", "Tallinna Vesi AS"]  # not the DELETED one
    assert pages == 2


async def test_creates_updates_and_deletes_a_company(fed: Federation, stub: pb_grpc.BusinessRegisterStub) -> None:
    registered = Timestamp()
    registered.FromJsonString("2024-02-29T12:30:00Z")
    created = await stub.CreateCompany(
        pb.CreateCompanyRequest(
            company=pb.Company(
                registry_code="30000001",
                name="Crossway OÜ",
                city="Tartu",
                share_capital="2500.10",
                registered_at=registered,
            )
        ),
        metadata=md(fed),
        timeout=15,
    )
    assert created.id and created.share_capital == "2500.10" and created.registered_at == registered
    updated = await stub.UpdateCompany(
        pb.UpdateCompanyRequest(company=pb.Company(id=created.id, city="Narva", share_capital="9999.99")),
        metadata=md(fed),
        timeout=15,
    )
    assert (updated.name, updated.city, updated.share_capital) == ("Crossway OÜ", "Narva", "9999.99")
    await stub.DeleteCompany(pb.DeleteCompanyRequest(id=created.id), metadata=md(fed), timeout=15)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetCompany(pb.GetCompanyRequest(id=created.id), metadata=md(fed), timeout=15)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert raised.value.details().startswith("backend: ")


async def test_registers_several_companies_in_one_batch_changeset_all_or_none(
    fed: Federation, stub: pb_grpc.BusinessRegisterStub
) -> None:
    result = await stub.RegisterCompanies(
        pb.RegisterCompaniesRequest(
            companies=[
                pb.Company(registry_code="40000001", name="Batch Üks OÜ", city="Viljandi", share_capital="3000"),
                pb.Company(registry_code="40000002", name="Batch Kaks OÜ", city="Viljandi", share_capital="4000"),
            ]
        ),
        metadata=md(fed),
        timeout=15,
    )
    assert [c.name for c in result.companies] == ["Batch Üks OÜ", "Batch Kaks OÜ"]
    assert all(c.id for c in result.companies)
    # One invalid company: SAP rolls back the whole changeset and says why.
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.RegisterCompanies(
            pb.RegisterCompaniesRequest(
                companies=[
                    pb.Company(registry_code="40000003", name="Fine OÜ", city="Rapla", share_capital="3000"),
                    pb.Company(registry_code="40000004", name="Poor OÜ", city="Rapla", share_capital="10"),
                ]
            ),
            metadata=md(fed),
            timeout=15,
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Share capital must be at least 2500.00 EUR" in raised.value.details()
    rapla = await stub.ListCompanies(pb.ListCompaniesRequest(city="Rapla"), metadata=md(fed), timeout=15)
    assert list(rapla.companies) == []


async def test_calls_a_function_import_and_gets_an_exact_decimal(
    fed: Federation, stub: pb_grpc.BusinessRegisterStub
) -> None:
    total = await stub.GetTotalShareCapital(pb.GetTotalShareCapitalRequest(city="Pärnu"), metadata=md(fed), timeout=15)
    assert total.total == "3000.50"


def context_md(fed: Federation) -> tuple[tuple[str, str], ...]:
    """md() plus an end user and the caller's trace, so every context header has a value."""
    return (*md(fed), ("crossway-user-id", OFFICIAL), ("traceparent", f"00-{CALLER_TRACE}-051581bf3cb55c13-01"))


async def exchanged(call: Any) -> tuple[Any, str]:
    """The answer of a grpc.aio call and the message id its gateway gave the exchange."""
    response = await call
    return response, metadata_text(await call.trailing_metadata())["crossway-message-id"]


def context_arrived(cap: CapServer, message_id: str) -> list[str]:
    """The HTTP methods SAP saw for one exchange, after checking each carried the whole context."""
    seen = [
        r for r in control(cap, "requests", "GET")["requests"] if r["headers"].get("crossway-message-id") == message_id
    ]
    for request in seen:
        headers = request["headers"]
        assert headers["crossway-client"] == str(TAX_SUBSYSTEM)
        assert headers["crossway-user-id"] == OFFICIAL
        assert headers["crossway-purpose"] == "tax-assessment"
        # The provider gateway's span, in the caller's trace: SAP's log joins the trace.
        _, trace, parent, _ = headers["traceparent"].split("-")
        assert trace == CALLER_TRACE and parent != "051581bf3cb55c13"
        assert not any("token" in name for name in headers)  # never the end user's token
    return [r["method"] for r in seen]


async def test_sap_sees_the_exchange_context_on_every_request_of_a_read_and_a_write(
    fed: Federation, cap: CapServer, stub: pb_grpc.BusinessRegisterStub
) -> None:
    _, read = await exchanged(
        stub.GetCompany(pb.GetCompanyRequest(id=TALLINNA_VESI), metadata=context_md(fed), timeout=15)
    )
    assert context_arrived(cap, read) == ["GET"]
    company = pb.Company(registry_code="60000001", name="Kontekst OÜ", city="Tartu", share_capital="2500")
    created, create = await exchanged(
        stub.CreateCompany(pb.CreateCompanyRequest(company=company), metadata=context_md(fed), timeout=15)
    )
    assert set(context_arrived(cap, create)) == {"POST"}  # twice if SAP had asked for a new CSRF token
    _, update = await exchanged(
        stub.UpdateCompany(
            pb.UpdateCompanyRequest(company=pb.Company(id=created.id, city="Narva")),
            metadata=context_md(fed),
            timeout=15,
        )
    )
    assert context_arrived(cap, update) == ["PATCH", "GET"]  # the change, then the stored entity read back
    _, delete = await exchanged(
        stub.DeleteCompany(pb.DeleteCompanyRequest(id=created.id), metadata=context_md(fed), timeout=15)
    )
    assert context_arrived(cap, delete) == ["DELETE"]


async def test_sap_sees_the_exchange_context_on_a_batch_and_a_function_import(
    fed: Federation, cap: CapServer, stub: pb_grpc.BusinessRegisterStub
) -> None:
    companies = [pb.Company(registry_code="60000002", name="Partii OÜ", city="Valga", share_capital="2500")]
    _, batch = await exchanged(
        stub.RegisterCompanies(pb.RegisterCompaniesRequest(companies=companies), metadata=context_md(fed), timeout=15)
    )
    assert context_arrived(cap, batch) == ["POST"]  # the $batch request itself
    total, function = await exchanged(
        stub.GetTotalShareCapital(pb.GetTotalShareCapitalRequest(city="Valga"), metadata=context_md(fed), timeout=15)
    )
    assert total.total and context_arrived(cap, function) == ["GET"]


async def test_a_sap_validation_error_is_invalid_argument_with_sap_s_message(
    fed: Federation, stub: pb_grpc.BusinessRegisterStub
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.CreateCompany(
            pb.CreateCompanyRequest(company=pb.Company(registry_code="123", name="Bad OÜ", share_capital="2600")),
            metadata=md(fed),
            timeout=15,
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Registry code must have exactly 8 digits" in raised.value.details()
    assert metadata_text(raised.value.trailing_metadata()).get("crossway-error") == "upstream.error"


async def test_a_stale_csrf_token_is_fetched_again_once_and_the_write_goes_through(
    fed: Federation, cap: CapServer, stub: pb_grpc.BusinessRegisterStub
) -> None:
    before = control(cap, "stats", "GET")
    control(cap, "csrf/rotate")  # the token the adapter holds is now stale, as after a session timeout
    created = await stub.CreateCompany(
        pb.CreateCompanyRequest(company=pb.Company(registry_code="50000001", name="Token OÜ", share_capital="2500")),
        metadata=md(fed),
        timeout=15,
    )
    after = control(cap, "stats", "GET")
    assert created.id
    assert after["rejected"] == before["rejected"] + 1  # the stale token was refused once …
    assert after["fetches"] == before["fetches"] + 1  # … a new one fetched, and the write resent
    assert after["sapClient"] == "100"  # sap-client travels on every request


async def test_a_backend_that_is_down_is_unavailable_upstream_unavailable(
    fed: Federation, stub: pb_grpc.BusinessRegisterStub
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetCompany(
            pb.GetCompanyRequest(id=TALLINNA_VESI),
            metadata=md(fed, ARCHIVE_SERVICE),
            timeout=15,
        )
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert metadata_text(raised.value.trailing_metadata()).get("crossway-error") == "upstream.unavailable"
    assert raised.value.details().startswith("backend: ")


async def test_a_slow_backend_is_deadline_exceeded_within_the_caller_s_deadline(
    fed: Federation, cap: CapServer, stub: pb_grpc.BusinessRegisterStub
) -> None:
    control(cap, "delay?ms=4000")
    try:
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.GetCompany(pb.GetCompanyRequest(id=TALLINNA_VESI), metadata=md(fed), timeout=1.5)
        elapsed = time.monotonic() - started
    finally:
        control(cap, "delay?ms=0")
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert elapsed < 2.0
    await asyncio.sleep(0)
