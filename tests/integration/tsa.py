"""A local RFC 3161 time-stamping authority for tests: `openssl ts -reply` behind a tiny HTTP server.

Its CA and signing certificate are minted per run (the signing certificate with the critical
id-kp-timeStamping usage RFC 3161 §2.3 requires); each POSTed query is piped through
``openssl ts -reply`` and the DER reply returned as ``application/timestamp-reply``.
"""

from __future__ import annotations

import datetime
import http.server
import subprocess
import tempfile
import threading
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_CONFIG = """\
[ tsa ]
default_tsa = local_tsa

[ local_tsa ]
serial = {dir}/serial
crypto_device = builtin
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def mint_tsa(directory: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA and a TSA signing certificate under it: (ca.pem, tsa.pem, tsa.key) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} CA"))
        .issuer_name(_name(f"{name} CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    tsa_key = ec.generate_private_key(ec.SECP256R1())
    tsa = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca.subject)
        .public_key(tsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem, tsa_pem, key_pem = directory / "ca.pem", directory / "tsa.pem", directory / "tsa.key"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tsa_pem.write_bytes(tsa.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(_pem(tsa_key))
    key_pem.chmod(0o600)
    return ca_pem, tsa_pem, key_pem


class LocalTsa:
    """``with LocalTsa(tmp, "Test TSA") as tsa: tsa.url, tsa.ca_pem`` — serves on 127.0.0.1:0."""

    def __init__(self, directory: Path, name: str = "Crossway Test TSA") -> None:
        self.directory = directory
        self.ca_pem, self.signer_pem, self.key_pem = mint_tsa(directory, name)
        self.config = directory / "openssl.cnf"
        self.config.write_text(_CONFIG.format(dir=directory))
        (directory / "serial").write_text("01\n")
        self.requests = 0
        self.fail = False  # answer 503, as a TSA in an outage would
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-tsa", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/tsr"

    def reply(self, query: bytes) -> bytes:
        """The TSA's DER reply to one DER query (also usable without HTTP)."""
        with self._lock, tempfile.TemporaryDirectory(dir=self.directory) as tmp:
            query_file, reply_file = Path(tmp) / "query.tsq", Path(tmp) / "reply.tsr"
            query_file.write_bytes(query)
            # openssl serialises on the serial file, hence the lock. No -chain: openssl writes the
            # certificates SET unsorted, which rfc3161-client's strict DER parser rejects; the CA is
            # the verifier's trust root anyway, so only the signer certificate travels.
            subprocess.run(
                ["openssl", "ts", "-reply", "-config", str(self.config), "-queryfile", str(query_file),
                 "-signer", str(self.signer_pem), "-inkey", str(self.key_pem),
                 "-out", str(reply_file)],
                check=True,
                capture_output=True,
                timeout=10,
            )  # fmt: skip
            self.requests += 1
            return reply_file.read_bytes()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        tsa = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                query = self.rfile.read(int(self.headers.get("content-length", "0")))
                if tsa.fail:
                    self.send_error(503, "TSA down for the test")
                    return
                try:
                    body = tsa.reply(query)
                except subprocess.CalledProcessError:
                    self.send_error(400, "bad query")
                    return
                self.send_response(200)
                self.send_header("content-type", "application/timestamp-reply")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def __enter__(self) -> LocalTsa:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
