"""The gateway's JWT verifiers, built from a token table of gateway.toml, with their JWKS sources.

Caller tokens (``[client_auth.jwt]``) and admin tokens (``[admin]``) take the same keys: PEM files
(``public_keys``), an identity provider's JWK Set (``jwks_url``, ``jwks_ca``, ``jwks_refresh_s``),
or both. A JWKS is fetched in the background (``crossway.security.jwks``); whoever builds a
verifier here owns its source: ``start()`` after building, ``aclose()`` on shutdown.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from crossway.security.jwks import JwksKeySource
from crossway.security.keys import load_public_key
from crossway.security.tokens import JwtVerifier
from gateway.shared.config import JwksConfig

__all__ = ["TokenVerifiers"]


class TokenVerifiers:
    def __init__(self) -> None:
        self._sources: list[JwksKeySource] = []

    def build(
        self,
        *,
        issuer: str,
        audience: str,
        public_keys: Sequence[Path],
        algorithms: Sequence[str],
        jwks: JwksConfig | None,
    ) -> JwtVerifier:
        source = None
        if jwks is not None:
            source = JwksKeySource(jwks.url, ca_file=jwks.ca, refresh_s=jwks.refresh_s)
            self._sources.append(source)
        return JwtVerifier(
            issuer=issuer,
            audience=audience,
            public_keys=[load_public_key(p) for p in public_keys],  # type: ignore[misc]
            algorithms=algorithms,
            key_source=source,
        )

    async def start(self) -> None:
        """The first fetch of each JWKS (a failure leaves it not ready: its tokens are refused)."""
        for source in self._sources:
            if not source.started:
                await source.start()

    async def aclose(self) -> None:
        for source in self._sources:
            await source.aclose()
