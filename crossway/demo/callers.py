"""What an agency system of the demo federation needs to call it: tokens and channels.

A mixin of :class:`crossway.demo.federation.Federation`, which sets the attributes named here.
"""

from __future__ import annotations

import grpc

from crossway.core.ids import SubsystemId
from crossway.demo.members import MARKETING_SUBSYSTEM, POPULATION_SERVICE, TAX, TAX_SUBSYSTEM, Agency
from crossway.security.keys import SigningKey
from crossway.security.pki import cert_to_pem
from crossway.security.tokens import mint_token
from registry import RegistryAuthority

__all__ = ["Callers"]


class Callers:
    tax: Agency
    idp_key: SigningKey  # the tax board's identity provider (caller tokens)
    user_token_key: SigningKey  # the tax board's end-user tokens
    authority: RegistryAuthority | None

    def token(self, subsystem: SubsystemId = TAX_SUBSYSTEM, *, ttl_s: int = 300) -> str:
        return mint_token(
            self.idp_key,
            subject=str(subsystem),
            issuer="https://idp.tax.example",
            audience=f"crossway:{self.tax.gateway}",
            ttl_s=ttl_s,
        )

    def user_token(
        self,
        user: str,
        *,
        claims: dict[str, object] | None = None,
        audience: str = str(POPULATION_SERVICE),
        ttl_s: int = 300,
        key: object | None = None,
    ) -> str:
        """An end-user token from the tax board (iss = its member id), for crossway-user-token."""
        return mint_token(
            key if key is not None else self.user_token_key,  # type: ignore[arg-type]
            subject=user,
            issuer=str(TAX),
            audience=audience,
            ttl_s=ttl_s,
            extra=claims,
        )

    @property
    def ca_pem(self) -> bytes:
        assert self.authority is not None
        return cert_to_pem(self.authority.ca_certificate)

    def channel(self) -> grpc.aio.Channel:
        """A channel from an agency system of 'tax' to its own gateway's client port (TLS + JWT)."""
        return grpc.aio.secure_channel(self.tax.client_address, grpc.ssl_channel_credentials(self.ca_pem))

    def marketing_channel(self) -> grpc.aio.Channel:
        """A channel authenticated by the marketing system's pinned client certificate (mTLS)."""
        return self.tax.pinned_client_channel(MARKETING_SUBSYSTEM, self.ca_pem)
