"""The REST adapter over TLS: a backend with a private CA that requires a client certificate.

The backend is a real HTTPS server on loopback (stdlib, one thread per request) whose TLS layer
refuses any client without a certificate from the test's own CA; every certificate and key is
minted for this run.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from adapters import BackendCall, HealthStatus, RestAdapter, RestMethod, RestSettings, TlsSettings
from crossway.core.errors import UpstreamUnavailable
from crossway.demo.business import business_descriptor_set
from protos.demo.business.v1 import business_pb2 as pb

SERVICE = "business.v1.BusinessRegister"
CLIENT_NAME = "EE/GOV/70000003/gw1 backend client"


@dataclass(frozen=True, slots=True)
class Pki:
    ca: Path
    server_certificate: Path
    server_key: Path
    client_certificate: Path
    client_key: Path
    stranger_certificate: Path  # a client certificate from another CA
    stranger_key: Path


def _issue(
    directory: Path,
    stem: str,
    name: str,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    usage: x509.ObjectIdentifier | None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=usage is None, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if usage == ExtendedKeyUsageOID.SERVER_AUTH:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    (directory / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / f"{stem}.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("rest-tls")
    ca = _issue(d, "ca", "Business Register backend CA", None, None)
    _issue(d, "server", "backend server", ca, ExtendedKeyUsageOID.SERVER_AUTH)
    _issue(d, "client", CLIENT_NAME, ca, ExtendedKeyUsageOID.CLIENT_AUTH)
    other_ca = _issue(d, "other-ca", "Somebody else's CA", None, None)
    _issue(d, "stranger", "a stranger", other_ca, ExtendedKeyUsageOID.CLIENT_AUTH)
    return Pki(
        *(d / "ca.crt", d / "server.crt", d / "server.key", d / "client.crt", d / "client.key"),
        *(d / "stranger.crt", d / "stranger.key"),
    )


class _Backend(BaseHTTPRequestHandler):
    clients: list[str] = []  # the common name of each verified client certificate

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        assert isinstance(self.connection, ssl.SSLSocket)
        peer = self.connection.getpeercert() or {}
        self.clients.extend(value for rdn in peer.get("subject", ()) for key, value in rdn if key == "commonName")
        data = json.dumps({"id": "c-1", "name": "Tallinna Vesi AS", "shareCapital": "20000000.00"}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def backend(pki: Pki) -> Iterator[str]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    context.verify_mode = ssl.CERT_REQUIRED  # no certificate from our CA, no connection
    context.load_cert_chain(str(pki.server_certificate), str(pki.server_key))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/api/"
    finally:
        server.shutdown()
        server.server_close()


def _adapter(base_url: str, tls: TlsSettings) -> RestAdapter:
    methods = {"GetCompany": RestMethod("GetCompany", "GET", "/companies/{id}", "")}
    return RestAdapter(RestSettings(base_url, methods, tls=tls), business_descriptor_set, SERVICE)


async def _get_company(adapter: RestAdapter) -> pb.Company:
    call = BackendCall(f"/{SERVICE}/GetCompany", 5.0, ())
    return pb.Company.FromString(await adapter.unary(call, pb.GetCompanyRequest(id="c-1").SerializeToString()))


async def test_the_private_ca_and_the_client_certificate_open_the_backend(backend: str, pki: Pki) -> None:
    adapter = _adapter(backend, TlsSettings(pki.ca, pki.client_certificate, pki.client_key))
    try:
        company = await _get_company(adapter)
        assert company.name == "Tallinna Vesi AS"
        assert _Backend.clients[-1] == CLIENT_NAME  # the backend saw and verified our certificate
        assert adapter.health().status is HealthStatus.SERVING
    finally:
        await adapter.aclose()


async def test_without_a_client_certificate_the_backend_refuses_and_the_call_is_unavailable(
    backend: str, pki: Pki
) -> None:
    adapter = _adapter(backend, TlsSettings(pki.ca))
    try:
        with pytest.raises(UpstreamUnavailable) as raised:
            await _get_company(adapter)
        assert "TLS" in raised.value.message
        assert adapter.health().status is HealthStatus.NOT_SERVING
    finally:
        await adapter.aclose()


async def test_a_client_certificate_from_another_ca_is_refused(backend: str, pki: Pki) -> None:
    adapter = _adapter(backend, TlsSettings(pki.ca, pki.stranger_certificate, pki.stranger_key))
    try:
        with pytest.raises(UpstreamUnavailable) as raised:
            await _get_company(adapter)
        assert "TLS" in raised.value.message
    finally:
        await adapter.aclose()


async def test_a_backend_certificate_outside_the_trusted_cas_is_refused_before_any_request(
    backend: str, pki: Pki
) -> None:
    seen = len(_Backend.clients)
    # No `ca`: the system's trust store, which does not know the backend's private CA.
    adapter = _adapter(backend, TlsSettings(None, pki.client_certificate, pki.client_key))
    try:
        with pytest.raises(UpstreamUnavailable) as raised:
            await _get_company(adapter)
        assert "certificate verify failed" in raised.value.message
        assert "`ca`" in raised.value.hint
        assert len(_Backend.clients) == seen  # nothing reached the backend
    finally:
        await adapter.aclose()
