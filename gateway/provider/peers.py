"""Provider-side step 1: is the calling gateway one the registry admitted, and which member?

The TLS layer already required a certificate chaining to the registry CA. Here, fail closed:
TLS 1.3 only; the certificate chains to a CA of the *current* configuration (CA rotation); it
is not revoked; and its fingerprint is registered for a gateway — which names the member.
Results are cached per (certificate, configuration serial): a new configuration, e.g. one with
a revocation, re-checks every peer on its next call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cryptography import x509

from crossway.core.errors import PeerRevoked, PeerUntrusted
from crossway.security.pki import inspect_certificate, verify_issued_by
from registry.configuration import VerifiedConfiguration

__all__ = ["PeerIdentity", "PeerVerifier"]


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    member: str
    gateway: str
    certificate_sha256: str


class PeerVerifier:
    def __init__(self) -> None:
        self._serial = -1
        self._cache: dict[bytes, PeerIdentity] = {}

    def identify(
        self, auth_context: Mapping[str, Iterable[bytes]], config: VerifiedConfiguration, now_ms: int
    ) -> PeerIdentity:
        versions = list(auth_context.get("ssl_tls_version", ()))
        if versions != [b"TLSv1.3"]:
            raise PeerUntrusted(
                f"peer connection uses {versions[0].decode() if versions else 'no TLS'}; gateways require TLS 1.3",
                hint="upgrade the peer gateway's TLS library",
            )
        pems = list(auth_context.get("x509_pem_cert", ()))
        if not pems:
            raise PeerUntrusted("the peer presented no TLS client certificate")
        pem = pems[0]
        if config.serial != self._serial:
            self._cache = {}
            self._serial = config.serial
        hit = self._cache.get(pem)
        if hit is not None:
            return hit
        info = inspect_certificate(pem)
        verify_issued_by(x509.load_der_x509_certificate(info.der), config.ca_certificates, now_ms)
        if config.is_revoked(info.serial):
            raise PeerRevoked(f"the peer's TLS certificate (serial {info.serial}) was revoked by the registry")
        gateway = config.gateway_by_tls_sha256(info.sha256)
        if gateway is None:
            raise PeerUntrusted(f"TLS certificate {info.sha256[:16]}… is not registered for any gateway")
        config.check_gateway_enabled(gateway.id)  # peer.disabled (issue 17)
        identity = PeerIdentity(str(gateway.id.member), str(gateway.id), info.sha256)
        if len(self._cache) < 4096:
            self._cache[pem] = identity
        return identity
