"""The REST/JSON adapter against a real HTTP server on loopback (stdlib, one thread per request)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import grpc
import pytest

from adapters import BackendCall, HealthStatus, RestAdapter, RestMethod, RestSettings
from crossway.core.errors import UpstreamFailed, UpstreamTimeout, UpstreamUnavailable
from crossway.demo.business import business_descriptor_set
from protos.demo.business.v1 import business_pb2 as pb

SERVICE = "business.v1.BusinessRegister"
COMPANY = {"id": "c-1", "registryCode": "10000001", "name": "Tallinna Vesi AS", "shareCapital": "20000000.00"}


class _Backend(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, dict[str, list[str]], object, str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self) -> tuple[str, dict[str, list[str]], object]:
        url = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        query = parse_qs(url.query)
        self.seen.append((self.command, url.path, query, body, self.headers.get("crossway-client", "")))
        return url.path, query, body

    def do_GET(self) -> None:
        path, query, _ = self._record()
        if path == "/api/companies/c-1":
            self._answer(200, {**COMPANY, "extra": "ignored"})
        elif path == "/api/companies/slow":
            time.sleep(2)
            self._answer(200, COMPANY)
        elif path == "/api/companies":
            self._answer(200, [COMPANY] if query.get("city") == ["Tallinn"] else [])
        else:
            self._answer(404, {"error": {"code": "NOT_FOUND", "message": f"no company at {path}"}})

    def do_POST(self) -> None:
        _, _, body = self._record()
        assert isinstance(body, dict)
        if body.get("shareCapital", "0") < "2500":
            self._answer(422, {"title": "Unprocessable", "detail": "share capital below 2500"})
        else:
            self._answer(201, {**body, "id": "c-2"})


@pytest.fixture(scope="module")
def backend() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/"
    finally:
        server.shutdown()
        server.server_close()


def _adapter(base_url: str) -> RestAdapter:
    methods = {
        "GetCompany": RestMethod("GetCompany", "GET", "/companies/{id}", ""),
        "ListCompanies": RestMethod("ListCompanies", "GET", "/companies", "", response_field="companies"),
        "CreateCompany": RestMethod("CreateCompany", "POST", "/companies", "company"),
    }
    return RestAdapter(RestSettings(base_url, methods), business_descriptor_set, SERVICE)


def _call(method: str, timeout: float = 5.0) -> BackendCall:
    return BackendCall(f"/{SERVICE}/{method}", timeout, (("crossway-client", "EE/GOV/70000001/tax"),))


async def test_a_path_field_fills_the_template_and_the_json_answer_becomes_the_response(backend: str) -> None:
    adapter = _adapter(backend)
    try:
        raw = await adapter.unary(_call("GetCompany"), pb.GetCompanyRequest(id="c-1").SerializeToString())
        company = pb.Company.FromString(raw)
        assert (company.name, company.share_capital) == ("Tallinna Vesi AS", "20000000.00")
        assert _Backend.seen[-1][4] == "EE/GOV/70000001/tax"  # the verified client travels as a header
        assert adapter.health().status is HealthStatus.SERVING
    finally:
        await adapter.aclose()


async def test_other_fields_of_a_get_go_to_the_query_and_an_array_fills_the_repeated_field(backend: str) -> None:
    adapter = _adapter(backend)
    try:
        raw = await adapter.unary(
            _call("ListCompanies"), pb.ListCompaniesRequest(city="Tallinn", page_size=5).SerializeToString()
        )
        assert [c.name for c in pb.ListCompaniesResponse.FromString(raw).companies] == ["Tallinna Vesi AS"]
        assert _Backend.seen[-1][2] == {"city": ["Tallinn"], "pageSize": ["5"]}
    finally:
        await adapter.aclose()


async def test_a_post_sends_the_body_field_as_json(backend: str) -> None:
    adapter = _adapter(backend)
    try:
        request = pb.CreateCompanyRequest(company=pb.Company(name="Uus OÜ", share_capital="3000"))
        created = pb.Company.FromString(await adapter.unary(_call("CreateCompany"), request.SerializeToString()))
        assert (created.id, created.name) == ("c-2", "Uus OÜ")
        assert _Backend.seen[-1][3] == {"name": "Uus OÜ", "shareCapital": "3000"}
    finally:
        await adapter.aclose()


async def test_http_errors_become_grpc_status_with_the_backend_s_message(backend: str) -> None:
    adapter = _adapter(backend)
    try:
        with pytest.raises(UpstreamFailed) as missing:
            await adapter.unary(_call("GetCompany"), pb.GetCompanyRequest(id="nope").SerializeToString())
        assert missing.value.status == grpc.StatusCode.NOT_FOUND
        assert missing.value.message == "no company at /api/companies/nope"
        request = pb.CreateCompanyRequest(company=pb.Company(name="Vaene OÜ", share_capital="10"))
        with pytest.raises(UpstreamFailed) as invalid:
            await adapter.unary(_call("CreateCompany"), request.SerializeToString())
        assert invalid.value.status == grpc.StatusCode.INVALID_ARGUMENT
        assert invalid.value.message == "share capital below 2500"
        assert adapter.health().status is HealthStatus.SERVING  # the backend answered
    finally:
        await adapter.aclose()


async def test_the_deadline_bounds_the_call(backend: str) -> None:
    adapter = _adapter(backend)
    try:
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout):
            await adapter.unary(_call("GetCompany", timeout=0.5), pb.GetCompanyRequest(id="slow").SerializeToString())
        assert time.monotonic() - started < 1.0
    finally:
        await adapter.aclose()


async def test_an_unreachable_backend_is_unavailable_and_not_serving() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    adapter = _adapter(f"http://127.0.0.1:{port}/api/")
    try:
        with pytest.raises(UpstreamUnavailable):
            await adapter.unary(_call("GetCompany"), pb.GetCompanyRequest(id="c-1").SerializeToString())
        assert adapter.health().status is HealthStatus.NOT_SERVING
    finally:
        await adapter.aclose()
