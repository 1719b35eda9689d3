"""The console as an ASGI app: routes, templates, static files, the security middleware.

``create_app(config, public_url)`` builds it for a console reachable at ``public_url`` (the
command binds its socket first, so the URL is known before the app exists: the OIDC redirect URI
and the Origin check need it). The gRPC channels to the APIs are made in the app's lifespan,
inside the event loop that serves it.

The vendored htmx (``static/htmx.min.js``) is htmx.org 2.0.11's ``dist/htmx.min.js`` from npm:
``npm pack htmx.org@2.0.11`` (52,182 bytes), sha256
d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717. The app refuses to start with
any other file there, and pages load it with Subresource Integrity (sha384 below).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from console import audit_pages, policy_pages, signin, status_pages
from console.backends import Backends
from console.config import DEMO_CLIENT_ID, ConsoleConfig
from console.demo_idp import DemoProvider
from console.oidc import OidcClient
from console.security import SecurityMiddleware
from console.sessions import SessionStore
from console.web import ConsoleState, SignInNeeded, session_of, sign_in_page
from crossway.core.errors import ConfigError
from crossway.security.keys import load_public_key
from crossway.security.tokens import JwtVerifier

__all__ = ["HTMX_SHA256", "HTMX_SRI", "create_app"]

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"
HTMX_SRI = "sha384-2OatzQy1H+Zd/IIrjr1TcuDGqLXeHhbooAyJY1KdQMKnr4LZ22k31GBLdYKHmVjg"


def _check_htmx() -> None:
    data = (HERE / "static" / "htmx.min.js").read_bytes()
    if hashlib.sha256(data).hexdigest() != HTMX_SHA256:
        raise ConfigError(
            "console/static/htmx.min.js is not the vendored htmx 2.0.11",
            hint="restore it: npm pack htmx.org@2.0.11 and take package/dist/htmx.min.js",
        )


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value is escaped; nothing is marked safe
        undefined=jinja2.StrictUndefined,
    )
    env.globals["htmx_sri"] = HTMX_SRI
    return Jinja2Templates(env=env)


def _verifier(config: ConsoleConfig, demo: DemoProvider | None) -> JwtVerifier:
    if demo is not None:
        keys: list[Any] = [demo.public_key]
    else:
        keys = [load_public_key(p) for p in config.oidc.public_keys]
    return JwtVerifier(issuer=config.oidc.issuer, audience=config.oidc.client_id, public_keys=keys)


async def _favicon(request: Request) -> Response:
    return Response(status_code=204)  # browsers ask for it; a 404 would be a console error


def create_app(config: ConsoleConfig, public_url: str, *, on_ready: Callable[[], None] = lambda: None) -> Starlette:
    _check_htmx()
    public_url = public_url.rstrip("/")
    templates = _templates()
    demo = None
    if config.demo_provider is not None:
        demo = DemoProvider(config.demo_provider, DEMO_CLIENT_ID, templates)
        log.warning("DEMO identity provider enabled: anyone who reaches %s can sign in without a password", public_url)
    redirect_uri = f"{public_url}{signin.CALLBACK}"
    if demo is not None:
        demo.redirect_uri = redirect_uri
        # The token exchange reaches the mounted provider in-process (no socket, no Host header to trust).
        demo_app = Starlette(routes=demo.routes())

        def http() -> httpx.AsyncClient:
            return httpx.AsyncClient(transport=httpx.ASGITransport(app=demo_app), base_url=public_url)

    else:
        ca = config.oidc.ca

        def http() -> httpx.AsyncClient:
            return httpx.AsyncClient(verify=str(ca) if ca is not None else True)

    oidc = OidcClient(config.oidc, _verifier(config, demo), redirect_uri, http, base_url=public_url)
    console = ConsoleState(config, public_url, SessionStore(config.session_ttl_s), oidc, templates, demo)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        console.backends = Backends(config.audit, config.gateways)
        on_ready()
        try:
            yield
        finally:
            await console.backends.aclose()

    def csrf(request: Request) -> str | None:
        session = session_of(request)
        return session.csrf_token if session is not None else None

    async def sign_in(request: Request, exc: Exception) -> Response:
        return sign_in_page(request)

    routes: list[Route | Mount] = [
        *signin.routes(),
        *audit_pages.routes(),
        *policy_pages.routes(),
        *status_pages.routes(),
        *(demo.routes() if demo is not None else []),
        Route("/favicon.ico", _favicon),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    origin = public_url  # scheme://host[:port], as browsers send it in Origin
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityMiddleware, origin=lambda: origin, csrf=csrf, https=config.secure_cookies)],
        exception_handlers={SignInNeeded: sign_in},
        lifespan=lifespan,
    )
    app.state.console = console
    return app
