"""SAP basic authentication against a real SAP CAP server that requires it, like an SAP Gateway
system user (server.js checks SAP_TEST_USER / SAP_TEST_PASSWORD on every OData request)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from adapters import BackendCall, HealthStatus, SapMethod, SapODataAdapter, SapSettings
from crossway.core.errors import UpstreamFailed
from crossway.demo.business import business_descriptor_set
from crossway.demo.sapcap import CapServer
from protos.demo.business.v1 import business_pb2 as pb
from tests.integration.sap_cap import control, start_cap_server

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVICE = "business.v1.BusinessRegister"
USER, PASSWORD = "CROSSWAY", "s3cret-for-this-run"
TALLINNA_VESI = "0f8fad5b-d9cb-469f-a165-70867728950e"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cap() -> AsyncIterator[CapServer]:
    server = await start_cap_server(env={"SAP_TEST_USER": USER, "SAP_TEST_PASSWORD": PASSWORD})
    try:
        yield server
    finally:
        await server.aclose()


def _adapter(cap: CapServer, password: str) -> SapODataAdapter:
    settings = SapSettings(
        service_url=cap.service_url,
        methods={"GetCompany": SapMethod("GetCompany", "read", entity_set="Companies")},
        sap_client="100",
        auth="basic",
        username=USER,
        password=password,
        properties={"id": "ID"},
    )
    return SapODataAdapter(settings, business_descriptor_set, SERVICE)


async def _get_company(adapter: SapODataAdapter) -> pb.Company:
    call = BackendCall(f"/{SERVICE}/GetCompany", 10.0, ())
    raw = await adapter.unary(call, pb.GetCompanyRequest(id=TALLINNA_VESI).SerializeToString())
    return pb.Company.FromString(raw)


async def test_the_system_user_s_credentials_open_the_service(cap: CapServer) -> None:
    before = control(cap, "stats", "GET")["unauthorized"]
    adapter = _adapter(cap, PASSWORD)
    try:
        company = await _get_company(adapter)
        assert company.name == "Tallinna Vesi AS"
        assert control(cap, "stats", "GET")["unauthorized"] == before  # $metadata and the read both passed
        assert adapter.health().status is HealthStatus.SERVING
    finally:
        await adapter.aclose()


async def test_a_wrong_password_is_unauthenticated_with_a_hint_and_no_secret(cap: CapServer) -> None:
    before = control(cap, "stats", "GET")["unauthorized"]
    adapter = _adapter(cap, "wrong-password")
    try:
        with pytest.raises(UpstreamFailed) as raised:
            await _get_company(adapter)
        assert raised.value.status == grpc.StatusCode.UNAUTHENTICATED
        assert raised.value.message == f"SAP at {cap.service_url} refused the gateway's logon (HTTP 401)"
        assert "password_env" in raised.value.hint
        assert "wrong-password" not in str(raised.value)
        assert control(cap, "stats", "GET")["unauthorized"] > before
    finally:
        await adapter.aclose()
