"""Page tokens of ``Audit.Query``: where a page ended, bound to the query that produced it.

A token is the position of a row in the query order — (request time, gateway, leaf index) — plus a
digest of the filters (the caller's scope included). It is not a secret and needs no signature:
whatever position a caller writes into one, the filters and the caller's scope still apply to
every row it gets back, so a forged token can only move within what the caller may already see.
The digest makes a token used with other filters an error rather than a silent skip into the
middle of another result.

Tokens are opaque to clients (URL-safe base64 of compact JSON), so their form may change; keep
decoding the old form when it does.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json

from audit.index.store import Filters, Position
from audit.trail.errors import AuditBadRequest

__all__ = ["decode_page_token", "encode_page_token", "filters_digest"]

_VERSION = 1


def filters_digest(filters: Filters) -> str:
    """Short SHA-256 over every filter, the scope included (16 hex digits: a check, not a MAC)."""
    doc = json.dumps(dataclasses.asdict(filters), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


def encode_page_token(position: Position, filters: Filters) -> str:
    time_ms, gateway, leaf = position
    doc = {"v": _VERSION, "t": time_ms, "g": gateway, "l": leaf, "f": filters_digest(filters)}
    raw = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, filters: Filters) -> Position:
    """The position a token names; raises ``AuditBadRequest`` for a malformed or foreign token."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        doc = json.loads(raw)
        position = (doc["t"], doc["g"], doc["l"])
        if doc["v"] != _VERSION or not isinstance(doc["f"], str):
            raise ValueError("unknown version")
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise AuditBadRequest(
            "the page token is not one this API issued", hint="start again without a page token"
        ) from exc
    if not (isinstance(position[0], int) and isinstance(position[1], str) and isinstance(position[2], int)):
        raise AuditBadRequest("the page token is not one this API issued", hint="start again without a page token")
    if doc["f"] != filters_digest(filters):
        raise AuditBadRequest(
            "the page token belongs to a query with other filters",
            hint="send the same filters as the query that returned the token, or start again without one",
        )
    return position
