"""Signing in and out: the sign-in page, the OIDC redirect and callback, sign-out."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from console.oidc import SignInFailed
from console.web import AUDITOR, POLICY_ADMIN, areas_for, redirect, render, session_of, state

__all__ = ["routes"]

log = logging.getLogger(__name__)

LOGIN_COOKIE = "crossway_login"
CALLBACK = "/oidc/callback"


def _safe_return(path: str) -> str:
    """Only a path on this console (never //host or a scheme): no open redirect after sign-in."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/"


async def home(request: Request) -> Response:
    session = session_of(request)
    if session is None:
        return redirect("/signin")
    if AUDITOR in session.roles:
        return redirect("/audit")
    if POLICY_ADMIN in session.roles:
        return redirect("/policies")
    areas = areas_for(session)
    return redirect(areas[0].path) if areas else render(request, "no_role.html")


async def signin_page(request: Request) -> Response:
    if session_of(request) is not None:
        return redirect("/")
    return render(request, "signin.html", {"return_to": _safe_return(request.query_params.get("next", "/"))})


async def login(request: Request) -> Response:
    """Step 1: a new attempt, and off to the identity provider."""
    console = state(request)
    login_id, attempt = console.sessions.begin_login(_safe_return(request.query_params.get("next", "/")))
    response = RedirectResponse(console.oidc.authorization_url(attempt), status_code=303)
    response.set_cookie(
        LOGIN_COOKIE,
        login_id,
        max_age=600,
        path=CALLBACK,
        httponly=True,
        secure=console.config.secure_cookies,
        samesite="lax",  # the provider's redirect back is a cross-site navigation
    )
    return response


async def callback(request: Request) -> Response:
    """Steps 2–5: the code for tokens, a new session, and on to where the user was going."""
    console = state(request)
    attempt = console.sessions.take_login(request.cookies.get(LOGIN_COOKIE, ""))
    try:
        signed = await console.oidc.finish(attempt, request.query_params)
    except SignInFailed as exc:
        log.warning("sign-in failed: %s", exc)
        response = render(request, "signin.html", {"problem": str(exc), "return_to": "/"}, status_code=400)
        response.delete_cookie(LOGIN_COOKIE, path=CALLBACK)
        return response
    session = console.sessions.create(signed.subject, signed.name, signed.roles, signed.access_token, signed.expires_at)
    log.info("signed in: %s (roles %s)", signed.subject, ", ".join(sorted(signed.roles)) or "none")
    # A page that moves on by itself, rather than a redirect: this response ends a cross-site
    # navigation (from the provider), and the Strict session cookie is sent only on a request
    # this console starts itself.
    assert attempt is not None
    response = render(request, "continue.html", {"target": attempt.return_to})
    response.delete_cookie(LOGIN_COOKIE, path=CALLBACK)
    response.set_cookie(
        console.session_cookie,
        session.sid,
        max_age=console.config.session_ttl_s,
        path="/",
        httponly=True,
        secure=console.config.secure_cookies,
        samesite="strict",
    )
    return response


async def logout(request: Request) -> Response:
    console = state(request)
    session = session_of(request)
    if session is not None:
        console.sessions.end(session.sid)
        log.info("signed out: %s", session.subject)
    response = redirect("/signin")
    response.delete_cookie(console.session_cookie, path="/")
    return response


def routes() -> list[Route]:
    return [
        Route("/", home),
        Route("/signin", signin_page),
        Route("/login", login),
        Route(CALLBACK, callback),
        Route("/logout", logout, methods=["POST"]),
    ]
