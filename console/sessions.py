"""Server-side sessions: the browser holds a random id in an HttpOnly cookie, nothing else.

The user's access token stays here, in the console process, and goes only into the
``authorization`` metadata of the calls made for that user: never into a cookie, a page, a URL
or a log line. A session ends at the earlier of the console's session lifetime and the token's
own expiry (the APIs would refuse it then anyway); signing out deletes it.

Two cookies, two jobs:
- ``crossway_session`` — the signed-in session, ``SameSite=Strict``: a link or form on another
  site never acts as the signed-in user. This matters beyond CSRF here: an auditor's reads are
  recorded in the audit log in their name, so no other site may make the browser read.
- ``crossway_login`` — only while signing in: the OIDC state, nonce and PKCE verifier of one
  attempt, ``SameSite=Lax`` because the identity provider's redirect back is a cross-site
  navigation (a Strict cookie would not come back with it). Its path is the callback's.
Both ``HttpOnly``; ``Secure`` when the console is served over https (``__Host-`` names then).
The demo runs plain http on loopback, where a browser drops Secure cookies: there they are not
Secure — acceptable on 127.0.0.1 only, which is all the demo listens on.

One process holds the sessions (a restart signs everyone out); replicas behind a balancer would
need sticky sessions — see docs/limits.md.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LoginAttempt", "Session", "SessionStore"]

LOGIN_TTL_S = 600  # an unfinished sign-in is forgotten after ten minutes


@dataclass(slots=True)
class LoginAttempt:
    state: str
    nonce: str
    verifier: str
    return_to: str
    expires_at: float


@dataclass(slots=True)
class Session:
    sid: str
    subject: str
    name: str
    roles: frozenset[str]
    access_token: str
    expires_at: float
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # Per-user scratch for multi-step forms (a policy upload waiting for confirmation).
    drafts: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # never the token, even in a traceback
        return f"Session(subject={self.subject!r}, roles={sorted(self.roles)!r})"

    @property
    def bearer(self) -> str:
        return f"Bearer {self.access_token}"


class SessionStore:
    def __init__(self, ttl_s: int, clock: Any = time.monotonic) -> None:
        self._ttl = ttl_s
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._logins: dict[str, LoginAttempt] = {}

    def _sweep(self) -> None:
        now = self._clock()
        for sid in [s for s, v in self._sessions.items() if v.expires_at <= now]:
            del self._sessions[sid]
        for lid in [k for k, v in self._logins.items() if v.expires_at <= now]:
            del self._logins[lid]

    # -- signing in ----------------------------------------------------------------------------

    def begin_login(self, return_to: str) -> tuple[str, LoginAttempt]:
        """A new attempt under a new random id (the login cookie's value)."""
        self._sweep()
        attempt = LoginAttempt(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(64),  # RFC 7636: 43–128 characters of [A-Za-z0-9-._~]
            return_to=return_to,
            expires_at=self._clock() + LOGIN_TTL_S,
        )
        login_id = secrets.token_urlsafe(32)
        self._logins[login_id] = attempt
        return login_id, attempt

    def take_login(self, login_id: str) -> LoginAttempt | None:
        """The attempt, once: a callback replayed with the same cookie finds nothing."""
        self._sweep()
        return self._logins.pop(login_id, None) if login_id else None

    def create(
        self, subject: str, name: str, roles: frozenset[str], access_token: str, token_expires_at: float
    ) -> Session:
        """A fresh session id on every sign-in (no fixation), living no longer than its token."""
        self._sweep()
        expires = min(self._clock() + self._ttl, token_expires_at)
        session = Session(secrets.token_urlsafe(32), subject, name, roles, access_token, expires)
        self._sessions[session.sid] = session
        return session

    # -- requests ----------------------------------------------------------------------------

    def get(self, sid: str) -> Session | None:
        if not sid:
            return None
        session = self._sessions.get(sid)
        if session is None or session.expires_at <= self._clock():
            self._sessions.pop(sid, None)
            return None
        return session

    def end(self, sid: str) -> None:
        self._sessions.pop(sid, None)

    def __len__(self) -> int:
        return len(self._sessions)
