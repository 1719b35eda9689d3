"""The caller's gRPC metadata on the client port: what Crossway reads from it, and its bounds.

A caller steers an exchange with a few ``crossway-*`` keys (which provider, which end user, for
what purpose). Everything else in its metadata is its own business, but not without bounds:
gRPC itself refuses headers beyond ``grpc.max_metadata_size`` without a word of why, so the
client port lets somewhat more through and refuses here, with ``client.metadata_invalid`` and a
reason (``[limits] max_metadata_entries`` / ``max_metadata_bytes``). A Crossway key sent twice is
refused too — which of two purposes would the policy see, and which would the audit record? —
and so is a ``crossway-*`` key Crossway does not know: a misspelt ``crossway-purpse`` would
otherwise send the call without a purpose.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from crossway.core.errors import ClientMetadataInvalid

__all__ = [
    "MD_PURPOSE",
    "MD_SERVICE",
    "MD_USER",
    "MD_USER_TOKEN",
    "metadata_problem",
]

MD_SERVICE = "crossway-service"
MD_USER = "crossway-user-id"
MD_USER_TOKEN = "crossway-user-token"  # noqa: S105 - a metadata key; its value, the end user's JWT, is never logged
MD_PURPOSE = "crossway-purpose"

# The keys a caller may send, with the longest value each may hold (bytes).
_CROSSWAY_KEYS = {MD_SERVICE: 512, MD_USER: 256, MD_PURPOSE: 256, MD_USER_TOKEN: 8192}
# Read by the gateway as well; a second copy would be as ambiguous as a second purpose.
_SINGLE_KEYS = (*_CROSSWAY_KEYS, "authorization", "traceparent")


def _size(value: Any) -> int:
    return len(value) if isinstance(value, bytes | str) else 0


def metadata_problem(
    metadata: Iterable[tuple[str, Any]] | None, *, max_entries: int, max_bytes: int
) -> ClientMetadataInvalid | None:
    """Why this metadata is refused, or None when it is fine. Never echoes a value."""
    entries = list(metadata or ())
    if len(entries) > max_entries:
        return ClientMetadataInvalid(
            f"the call carries {len(entries)} metadata entries; at most {max_entries} are accepted"
        )
    total = sum(len(key) + _size(value) for key, value in entries)
    if total > max_bytes:
        return ClientMetadataInvalid(f"the call's metadata is {total} bytes; at most {max_bytes} are accepted")
    seen: set[str] = set()
    for key, value in entries:
        if key in _SINGLE_KEYS and key in seen:
            return ClientMetadataInvalid(f"metadata key {key} is given more than once")
        seen.add(key)
        if key.startswith("crossway-") and key not in _CROSSWAY_KEYS:
            close = difflib.get_close_matches(key, _CROSSWAY_KEYS, n=1)
            return ClientMetadataInvalid(
                f"metadata key {key} is not one Crossway reads",
                hint=f"did you mean {close[0]}?" if close else f"Crossway reads {', '.join(sorted(_CROSSWAY_KEYS))}",
            )
        limit = _CROSSWAY_KEYS.get(key)
        if limit is not None and _size(value) > limit:
            return ClientMetadataInvalid(f"metadata {key} is {_size(value)} bytes long; at most {limit} are accepted")
    return None
