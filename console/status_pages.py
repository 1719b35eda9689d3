"""The operators' page: every configured gateway's status (``Admin/GetStatus``), refreshed in place.

Health entries with their reasons, the registry configuration's serial and expiry, the policy
version, the audit spool and the checkpoint lag, certificate expiry, NATS connections. A gateway
that does not answer is shown as such; the others still are (one call per gateway, in parallel).
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from console.backends import AdminClient, ApiError
from console.web import iso, render, signed_in, state

__all__ = ["routes"]

DAY_MS = 86_400_000
CERT_WARN_DAYS = 30


def _in(ms: int, now_ms: int) -> str:
    """A person's "in 9 min" / "3 h ago" for a moment relative to the gateway's clock."""
    delta = (ms - now_ms) / 1000
    amount = abs(delta)
    text = (
        f"{amount:.0f} s"
        if amount < 120
        else f"{amount / 60:.0f} min"
        if amount < 7200
        else f"{amount / 3600:.0f} h"
        if amount < 172_800
        else f"{amount / 86400:.0f} days"
    )
    return f"in {text}" if delta >= 0 else f"{text} ago"


def _card(name: str, status: Any) -> dict[str, Any]:
    now = status.now_ms
    health = [{"name": h.name or "(gateway)", "status": h.status, "reason": h.reason} for h in status.health]
    overall = next((h.status for h in status.health if h.name == ""), "UNKNOWN")
    lag = max(0, status.log_size - status.checkpoint_size)
    return {
        "name": name,
        "gateway": status.gateway,
        "overall": overall,
        "health": health,
        "registry": {
            "serial": status.registry_serial or "none yet",
            "expires": iso(status.registry_expires_at_ms),
            "expires_in": _in(status.registry_expires_at_ms, now) if status.registry_expires_at_ms else "",
            "expired": bool(status.registry_expires_at_ms) and status.registry_expires_at_ms <= now,
        },
        "policy_version": (
            f"v{status.policy_version}"
            if status.policy_version >= 0
            else "none loaded"
            if any(h.name == "crossway.policy" for h in status.health)
            else "none (provides no service)"
        ),
        "audit": {
            "spooled": status.audit_spooled,
            "pending": status.audit_pending,
            "log_size": status.log_size,
            "checkpoint_size": status.checkpoint_size,
            "lag": lag,
            "checkpoint_at": _in(status.checkpoint_at_ms, now) if status.checkpoint_at_ms else "not since start",
        },
        "certificates": [
            {
                "kind": c.kind,
                "subject": c.subject,
                "expires": iso(c.not_after_ms),
                "expires_in": _in(c.not_after_ms, now),
                "warn": c.not_after_ms - now < CERT_WARN_DAYS * DAY_MS,
                "fingerprint": c.fingerprint[:16],
            }
            for c in status.certificates
        ],
        "nats": [{"name": n.name, "state": n.state, "server": n.server} for n in status.nats],
        "now": iso(now),
    }


async def _one(client: AdminClient, bearer: str) -> dict[str, Any]:
    try:
        return _card(client.name, await client.status(bearer))
    except ApiError as exc:
        return {"name": client.name, "error": exc}


async def status_page(request: Request) -> Response:
    session = signed_in(request)
    clients = list(state(request).api().gateways.values())
    cards = await asyncio.gather(*(_one(c, session.bearer) for c in clients))
    context = {"cards": cards}
    if request.headers.get("hx-request"):
        return render(request, "_status_cards.html", context, area="gateways")
    return render(request, "status.html", context, area="gateways")


def routes() -> list[Route]:
    return [Route("/status", status_page)]
