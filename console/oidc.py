"""Signing in with the agency's identity provider: OpenID Connect authorization code flow with PKCE.

The console is the OIDC client (the relying party). Steps, each failing closed:
1. ``/login``: a new attempt — random ``state`` (binds the callback to this browser's attempt),
   ``nonce`` (binds the ID token to it) and PKCE ``code_verifier`` (RFC 7636, method S256), kept
   server-side under the login cookie; the browser goes to the provider's authorization endpoint;
2. ``/oidc/callback``: the ``state`` is this browser's attempt (taken once), the provider sent a
   ``code`` and no ``error``;
3. the code is exchanged at the token endpoint, back-channel, with the verifier (and the client
   secret for a confidential client): the provider checks the verifier against the challenge;
4. the ID token verifies — signature with the provider's configured keys, issuer, audience = our
   client id, expiry — and carries our nonce;
5. the access token is kept in the server-side session, to be sent as the user's own bearer
   token to the gateways' admin ports and the audit API, which decide what the user may do.

The roles in the ID token only decide what the pages show; every check that matters is made by
the APIs with the access token.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from console.config import OidcConfig
from console.sessions import LoginAttempt
from crossway.core.errors import TokenInvalid
from crossway.security.tokens import JwtVerifier

__all__ = ["OidcClient", "SignInFailed", "SignedIn", "code_challenge"]


class SignInFailed(Exception):
    """Signing in did not complete; the message is safe to show (never a token or a code)."""


@dataclass(frozen=True, slots=True)
class SignedIn:
    subject: str
    name: str
    roles: frozenset[str]
    access_token: str
    expires_at: float  # monotonic clock


def code_challenge(verifier: str) -> str:
    """RFC 7636 §4.2, S256: BASE64URL(SHA256(ASCII(code_verifier))), unpadded."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class OidcClient:
    def __init__(
        self,
        config: OidcConfig,
        verifier: JwtVerifier,
        redirect_uri: str,
        http: Callable[[], httpx.AsyncClient],
        *,
        base_url: str = "",
    ) -> None:
        self._config = config
        self._verifier = verifier
        self.redirect_uri = redirect_uri
        self._http = http  # a fresh client per exchange (the demo's talks to the mounted provider)
        self._base = base_url  # resolves endpoints given as paths on the console (the demo provider)

    def authorization_url(self, attempt: LoginAttempt) -> str:
        """Step 1: where the browser goes to sign in."""
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self._config.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": self._config.scopes,
                "state": attempt.state,
                "nonce": attempt.nonce,
                "code_challenge": code_challenge(attempt.verifier),
                "code_challenge_method": "S256",
            }
        )
        endpoint = self._config.authorization_endpoint
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    async def finish(self, attempt: LoginAttempt | None, params: Mapping[str, str]) -> SignedIn:
        """Steps 2–4 for the callback's query parameters."""
        # 2. this browser's attempt, and a code
        if attempt is None or params.get("state", "") != attempt.state:
            raise SignInFailed("this sign-in was not started from this browser, or it expired: sign in again")
        if params.get("error"):
            # The provider's error code is a fixed vocabulary (RFC 6749 §4.1.2.1), safe to show.
            raise SignInFailed(f"the identity provider refused the sign-in: {params['error'][:64]}")
        code = params.get("code", "")
        if not code:
            raise SignInFailed("the identity provider sent no authorization code")
        # 3. the code for tokens, proving we hold the verifier
        tokens = await self._exchange(code, attempt.verifier)
        # 4. the ID token
        id_token = tokens.get("id_token")
        access_token = tokens.get("access_token")
        if not isinstance(id_token, str) or not isinstance(access_token, str) or not access_token:
            raise SignInFailed("the identity provider's answer lacks an ID token or an access token")
        try:
            claims = self._verifier.verify(id_token)
        except TokenInvalid as exc:
            raise SignInFailed(f"the ID token does not verify: {exc.message}") from exc
        if claims.claims.get("nonce") != attempt.nonce:
            raise SignInFailed("the ID token was not issued for this sign-in (nonce)")
        raw_roles = claims.claims.get(self._config.roles_claim, [])
        roles = [raw_roles] if isinstance(raw_roles, str) else raw_roles if isinstance(raw_roles, list) else []
        name = claims.claims.get(self._config.name_claim)
        expires_in = tokens.get("expires_in", 300)
        lifetime = float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else 300.0
        return SignedIn(
            subject=claims.subject,
            name=name if isinstance(name, str) and name else claims.subject,
            roles=frozenset(r for r in roles if isinstance(r, str)),
            access_token=access_token,
            expires_at=time.monotonic() + lifetime,
        )

    async def _exchange(self, code: str, verifier: str) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "client_id": self._config.client_id,
            "code_verifier": verifier,
        }
        extra: dict[str, Any] = {}
        if self._config.client_secret:  # a confidential client: client_secret_basic (RFC 6749 §2.3.1)
            extra["auth"] = httpx.BasicAuth(self._config.client_id, self._config.client_secret)
        endpoint = self._config.token_endpoint
        if endpoint.startswith("/"):
            endpoint = self._base + endpoint
        try:
            async with self._http() as client:
                response = await client.post(endpoint, data=form, timeout=10.0, **extra)
        except httpx.HTTPError as exc:
            raise SignInFailed(f"the identity provider's token endpoint did not answer ({type(exc).__name__})") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict):
            error = body.get("error", "") if isinstance(body, dict) else ""
            raise SignInFailed(
                f"the identity provider refused the code (HTTP {response.status_code}{', ' + str(error)[:64] if error else ''})"
            )
        return body
