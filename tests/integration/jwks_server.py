"""An identity provider's JWKS endpoint for tests: HTTPS on loopback, port 0, keys the test changes.

Its TLS certificate is minted per run (self-signed for 127.0.0.1, and its own trust anchor, so a
gateway trusts it through ``jwks_ca``). ``publish()`` replaces the key set served at ``/jwks``.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import ssl
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import jwt

from crossway.security.keys import generate_tls_key, save_pem, save_private_key
from crossway.security.pki import self_signed


def jwk_of(key: Any, kid: str) -> dict[str, Any]:
    """The public JWK of a private EC or Ed25519 key, named ``kid``."""
    algorithm = jwt.algorithms.ECAlgorithm if hasattr(key, "curve") else jwt.algorithms.OKPAlgorithm
    return {**json.loads(algorithm.to_jwk(key.public_key())), "kid": kid, "use": "sig"}


class JwksServer:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        key = generate_tls_key()
        self.ca_file = directory / "jwks-ca.pem"
        save_pem(
            self.ca_file,
            self_signed(key, "127.0.0.1", valid_for=dt.timedelta(days=1), ip_addresses=["127.0.0.1"], anchor=True),
        )
        save_private_key(directory / "jwks.key", key)
        self._keys: list[dict[str, Any]] = []
        self.fetches = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                body = json.dumps({"keys": owner._keys}).encode()
                self.send_response(200 if self.path == "/jwks" else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, directory / "jwks.key")
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}/jwks"

    def publish(self, *keys: dict[str, Any]) -> None:
        self._keys = list(keys)

    def __enter__(self) -> JwksServer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
