"""Helpers for the audit API tests: a TLS certificate, an auditors' identity provider, the server."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import grpc

from crossway.demo.processes import ManagedProcess
from crossway.security.keys import generate_signing_key, generate_tls_key, save_pem, save_private_key
from crossway.security.pki import self_signed
from crossway.security.tokens import mint_token

ISSUER = "https://idp.auditors.example"
AUDIENCE = "crossway:audit-api"


def server_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the test pins it as the only root)."""
    key = generate_tls_key()
    cert = self_signed(key, "audit-api.test", valid_for=dt.timedelta(hours=1), ip_addresses=("127.0.0.1",), anchor=True)
    key_path, cert_path = directory / "audit-api.key", directory / "audit-api.crt"
    save_private_key(key_path, key)
    save_pem(cert_path, cert)
    return key_path, cert_path


class AuditApiProcess:
    """``crossway audit serve`` as a real subprocess, with its own IdP key and TLS certificate."""

    def __init__(self, directory: Path, index: str, anchor: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._idp = generate_signing_key("ES256")
        save_pem(directory / "idp.pub", self._idp.public_key())
        key, self._cert = server_certificate(directory)
        argv = [sys.executable, "-m", "crossway.cli", "audit", "serve", "--index", index, "--listen", "127.0.0.1:0"]
        argv += ["--tls-key", str(key), "--tls-cert", str(self._cert), "--issuer", ISSUER, "--audience", AUDIENCE]
        argv += ["--public-key", str(directory / "idp.pub"), "--anchor", anchor]
        self.process = ManagedProcess("audit api", argv)
        self.port = 0

    async def start(self) -> None:
        await self.process.start()
        match = await self.process.wait_for(r"audit API listening on 127\.0\.0\.1:(\d+)", 30)
        self.port = int(match.group(1))

    async def aclose(self) -> None:
        await self.process.stop()

    def token(self, subject: str, roles: list[str], member: str | None = None) -> str:
        extra: dict[str, object] = {"roles": roles}
        if member is not None:
            extra["member"] = member
        return mint_token(self._idp, subject=subject, issuer=ISSUER, audience=AUDIENCE, extra=extra)

    def channel(self) -> grpc.aio.Channel:
        creds = grpc.ssl_channel_credentials(self._cert.read_bytes())
        return grpc.aio.secure_channel(f"127.0.0.1:{self.port}", creds)
