"""OData V2 (Edm) values ⇄ the JSON form of protobuf messages, both ways, without loss.

The adapter converts request messages with ``json_format.MessageToDict`` and responses with
``ParseDict``; in between, each value is converted for the Edm type of its OData property:

    Edm.Decimal          "2500.10" (exact string)      ⇄ pyodata str   — never a float
    Edm.DateTime(Offset) "2020-01-02T03:04:05Z" (RFC 3339, a Timestamp's JSON form) ⇄ aware datetime (UTC)
    Edm.Guid             "0f8fad5b-…" (validated, lower case)          ⇄ str
    Edm.Int64            "42" (proto3 JSON writes int64 as a string)   ⇄ int
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

import grpc

from crossway.core.errors import Hop, UpstreamFailed

__all__ = ["from_odata", "to_odata"]

_INTEGERS = {"Edm.Byte", "Edm.SByte", "Edm.Int16", "Edm.Int32", "Edm.Int64"}
_FLOATS = {"Edm.Double", "Edm.Single"}
_DATETIMES = {"Edm.DateTime", "Edm.DateTimeOffset"}


def _bad(name: str, value: Any, edm: str, why: str) -> UpstreamFailed:
    # The caller sent a value SAP cannot take: their error, named before anything reaches SAP.
    shown = str(value)[:40]
    return UpstreamFailed(
        f"field {name}: {shown!r} is not a valid {edm} ({why})",
        hop=Hop.BACKEND,
        status=grpc.StatusCode.INVALID_ARGUMENT,
    )


def to_odata(edm: str, value: Any, name: str) -> Any:
    """A JSON value of a request field → the Python value pyodata sends for that Edm type."""
    if value is None:
        return None
    if edm == "Edm.Decimal":
        try:
            number = decimal.Decimal(str(value))
        except decimal.InvalidOperation:
            raise _bad(name, value, edm, "a decimal number like 2500.10") from None
        if not number.is_finite():
            raise _bad(name, value, edm, "must be finite")
        return format(number, "f")
    if edm in _DATETIMES:
        try:
            moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise _bad(name, value, edm, "an RFC 3339 timestamp") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC)
    if edm == "Edm.Guid":
        try:
            return str(uuid.UUID(str(value)))
        except ValueError:
            raise _bad(name, value, edm, "a GUID like 0f8fad5b-d9cb-469f-a165-70867728950e") from None
    if edm in _INTEGERS:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise _bad(name, value, edm, "an integer") from None
    if edm in _FLOATS:
        return float(value)
    if edm == "Edm.Boolean":
        return bool(value)
    return value if isinstance(value, str) else str(value)


def _rfc3339(moment: dt.datetime) -> str:
    if moment.tzinfo is None:  # Edm.DateTime carries no zone; SAP Gateway means UTC
        moment = moment.replace(tzinfo=dt.UTC)
    moment = moment.astimezone(dt.UTC)
    return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds").replace("+00:00", "Z")


def from_odata(edm: str, value: Any) -> Any:
    """A value pyodata read for that Edm type → its JSON form for ``json_format.ParseDict``."""
    if value is None:
        return None
    if edm == "Edm.Decimal":
        return format(decimal.Decimal(str(value)), "f")
    if isinstance(value, dt.datetime):
        return _rfc3339(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if edm == "Edm.Guid":
        return str(value).lower()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    return value
