"""DEMO ONLY: a built-in OpenID Connect provider for ``make run``, mounted at ``/demo-idp``.

It lets anyone who can reach the console sign in, without a password, as one of a few demo
users (the demo's auditor, policy admin and observer). It exists so the demo needs no identity
provider of its own; a real deployment configures ``[oidc]`` with the agency's provider and never
a ``[demo_provider]`` table. The console prints a warning at start whenever it is on.

It still speaks the protocol for real — authorization code, PKCE (S256 only), a code that works
once within a minute, the exact redirect URI and client id — so the console's OIDC client is
exercised exactly as against a real provider. Tokens: an ID token for the console (audience
``crossway-console``, with the nonce) and an access token for the APIs (audiences from the
configuration: the gateways' admin ports and the audit API), both ES256/EdDSA JWTs with the
user's roles.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from console.config import DEMO_ISSUER, DemoProviderConfig, DemoUser
from console.oidc import code_challenge
from crossway.security.keys import load_private_key
from crossway.security.tokens import mint_token

__all__ = ["DemoProvider"]

CODE_TTL_S = 60.0


@dataclass(frozen=True, slots=True)
class _Grant:
    user: DemoUser
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    expires_at: float


class DemoProvider:
    def __init__(self, config: DemoProviderConfig, client_id: str, templates: Jinja2Templates) -> None:
        self._config = config
        self._key: Any = load_private_key(config.key, None)
        self._client_id = client_id
        self._templates = templates
        self._codes: dict[str, _Grant] = {}
        self.redirect_uri = ""  # set once the console knows its own URL
        self.users = {u.subject: u for u in config.users}

    @property
    def public_key(self) -> Any:
        return self._key.public_key()

    def routes(self) -> list[Route]:
        return [
            Route("/demo-idp/authorize", self._authorize, methods=["GET", "POST"]),
            Route("/demo-idp/token", self._token, methods=["POST"]),
        ]

    def _problem(self, params: Any) -> str:
        """Why an authorization request is refused ("" when it is fine). Never redirect on these."""
        if params.get("client_id") != self._client_id:
            return "unknown client_id"
        if params.get("redirect_uri") != self.redirect_uri:
            return "redirect_uri is not the registered one"
        if params.get("response_type") != "code":
            return "only response_type=code is supported"
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return "PKCE with S256 is required"
        if not params.get("state") or not params.get("nonce"):
            return "state and nonce are required"
        return ""

    async def _authorize(self, request: Request) -> Response:
        params: Any = await request.form() if request.method == "POST" else request.query_params
        problem = self._problem(params)
        if problem:
            return self._templates.TemplateResponse(
                request, "demo_idp.html", {"problem": problem, "users": (), "params": {}}, status_code=400
            )
        keep = (
            "client_id",
            "redirect_uri",
            "response_type",
            "scope",
            "state",
            "nonce",
            "code_challenge",
            "code_challenge_method",
        )
        if request.method == "GET":
            return self._templates.TemplateResponse(
                request,
                "demo_idp.html",
                {"problem": "", "users": self._config.users, "params": {k: params.get(k, "") for k in keep}},
            )
        user = self.users.get(str(params.get("user", "")))
        if user is None:
            return self._templates.TemplateResponse(
                request, "demo_idp.html", {"problem": "no such demo user", "users": (), "params": {}}, status_code=400
            )
        now = time.monotonic()
        self._codes = {c: g for c, g in self._codes.items() if g.expires_at > now}
        code = secrets.token_urlsafe(32)
        self._codes[code] = _Grant(
            user,
            self._client_id,
            self.redirect_uri,
            str(params["code_challenge"]),
            str(params["nonce"]),
            now + CODE_TTL_S,
        )
        target = f"{self.redirect_uri}?{urlencode({'code': code, 'state': str(params['state'])})}"
        return RedirectResponse(target, status_code=303)

    async def _token(self, request: Request) -> Response:
        form = await request.form()
        grant = self._codes.pop(str(form.get("code", "")), None)  # once, whatever happens next
        if form.get("grant_type") != "authorization_code" or grant is None or grant.expires_at <= time.monotonic():
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if form.get("client_id") != grant.client_id or form.get("redirect_uri") != grant.redirect_uri:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if code_challenge(str(form.get("code_verifier", ""))) != grant.challenge:  # RFC 7636 §4.6
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        user, ttl = grant.user, self._config.token_ttl_s
        claims: dict[str, object] = {"roles": list(user.roles), "name": user.name}
        if user.member:
            claims["member"] = user.member
        access = mint_token(
            self._key,
            subject=user.subject,
            issuer=DEMO_ISSUER,
            audience=list(self._config.audiences),
            ttl_s=ttl,
            extra=claims,
        )
        identity = mint_token(
            self._key,
            subject=user.subject,
            issuer=DEMO_ISSUER,
            audience=grant.client_id,
            ttl_s=ttl,
            extra={**claims, "nonce": grant.nonce},
        )
        return JSONResponse(
            {"access_token": access, "id_token": identity, "token_type": "Bearer", "expires_in": ttl},
            headers={"Cache-Control": "no-store"},
        )
