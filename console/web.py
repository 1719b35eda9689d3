"""What every page handler shares: the console's state, the signed-in user, rendering, errors.

A page is a ``Section`` list in a layout that takes more of them: the exchange page is sides,
decision, verification and evidence today; the delivery timeline and the topic delivery matrix
are further sections (a template and a name), not a new page design. The navigation shows the
areas the user's roles can use — what the APIs would refuse is hidden, never merely disabled,
and the APIs still refuse it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from console.backends import ApiError, Backends
from console.config import ConsoleConfig
from console.demo_idp import DemoProvider
from console.oidc import OidcClient
from console.security import SECURE_SESSION_COOKIE, SESSION_COOKIE
from console.sessions import Session, SessionStore

__all__ = [
    "AREAS",
    "Area",
    "ConsoleState",
    "SignInNeeded",
    "iso",
    "render",
    "render_error",
    "session_of",
    "signed_in",
    "state",
]

AUDITOR, POLICY_ADMIN, OBSERVER = "auditor", "policy-admin", "observer"


@dataclass(frozen=True, slots=True)
class Area:
    key: str
    title: str
    path: str
    roles: frozenset[str]  # any of these roles shows it


AREAS = (
    Area("audit", "Audit trail", "/audit", frozenset({AUDITOR})),
    Area("policies", "Policies", "/policies", frozenset({POLICY_ADMIN, AUDITOR, OBSERVER})),
    Area("gateways", "Gateways", "/status", frozenset({POLICY_ADMIN, AUDITOR, OBSERVER})),
)


@dataclass(slots=True)
class ConsoleState:
    config: ConsoleConfig
    public_url: str
    sessions: SessionStore
    oidc: OidcClient
    templates: Jinja2Templates
    demo: DemoProvider | None
    backends: Backends | None = None  # made in the lifespan, inside the event loop

    @property
    def session_cookie(self) -> str:
        return SECURE_SESSION_COOKIE if self.config.secure_cookies else SESSION_COOKIE

    def api(self) -> Backends:
        assert self.backends is not None, "the console's backends start with the app"
        return self.backends


class SignInNeeded(Exception):
    """Raised by ``signed_in``; the app answers with the sign-in page (or an htmx redirect)."""


def state(request: Request) -> ConsoleState:
    console: ConsoleState = request.app.state.console
    return console


def session_of(request: Request) -> Session | None:
    console = state(request)
    return console.sessions.get(request.cookies.get(console.session_cookie, ""))


def signed_in(request: Request) -> Session:
    session = session_of(request)
    if session is None:
        raise SignInNeeded
    return session


def areas_for(session: Session | None) -> list[Area]:
    if session is None:
        return []
    return [a for a in AREAS if a.roles & session.roles]


def iso(ms: int) -> str:
    """Epoch milliseconds as UTC, to the millisecond (as ``crossway audit query`` prints them)."""
    if not ms:
        return "—"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def render(
    request: Request, template: str, context: Mapping[str, Any] | None = None, *, area: str = "", status_code: int = 200
) -> Response:
    session = session_of(request)
    base = {
        "user": session,
        "csrf_token": session.csrf_token if session is not None else "",
        "areas": areas_for(session),
        "area": area,
        "demo": state(request).demo is not None,
    }
    response: Response = state(request).templates.TemplateResponse(
        request, template, {**base, **(context or {})}, status_code=status_code
    )
    response.headers["Vary"] = "HX-Request"
    return response


def render_error(request: Request, error: ApiError, *, area: str = "") -> Response:
    """An API's refusal as the CLI shows it: error[code]: message, and its hint."""
    status = 403 if error.forbidden else 404 if error.status == "NOT_FOUND" else 502
    if request.headers.get("hx-request"):
        return render(request, "_error.html", {"error": error}, area=area, status_code=200)
    return render(request, "error.html", {"error": error}, area=area, status_code=status)


def redirect(path: str) -> Response:
    return RedirectResponse(path, status_code=303)


def sign_in_page(request: Request) -> Response:
    if request.headers.get("hx-request"):  # a partial would land inside the page: send the whole browser
        return HTMLResponse("", headers={"HX-Redirect": "/signin"})
    return redirect("/signin")
