"""Obligations a permit attaches to the calls it allows, written as Cedar annotations.

    @id("tax-reads-names")
    @fields("name, address")     // data minimization: the client receives only these fields
    @quota("100/min")            // per client and method: at most 100 calls a minute
    permit (principal == ..., action == ..., resource == ...);

``@fields`` lists response field names (top level, or dotted into a nested message:
``address.city``). ``@quota`` is ``N/UNIT`` or ``N/Kunit`` with unit ``s``, ``min`` or ``h``
(``5/10s``). Both are checked when the policy loads, naming the file and line: a malformed
obligation is as dangerous as a malformed condition. They are allowed on permits only — a
forbid allows nothing, so it has nothing to restrict.

How a decision combines them (``combine``): any one deciding permit suffices in Cedar, so the
client receives the union of the permits' fields, and all fields as soon as one deciding permit
has no ``@fields``. Quotas are the other way round: every deciding permit's quota is enforced
(a limit an admin wrote is never skipped because another permit also matched).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from policies.errors import PolicyInvalid

__all__ = ["NO_OBLIGATIONS", "Obligations", "Quota", "combine", "parse_obligations"]

FIELDS = "fields"
QUOTA = "quota"

_FIELD_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_QUOTA = re.compile(r"\s*(\d+)\s*/\s*(\d*)\s*(s|sec|min|h|hour)\s*")
_UNIT_S = {"s": 1, "sec": 1, "min": 60, "h": 3600, "hour": 3600}


@dataclass(frozen=True, slots=True)
class Quota:
    """At most ``limit`` calls per ``period_s`` seconds, per client and method, under ``policy_id``."""

    policy_id: str
    limit: int
    period_s: int


@dataclass(frozen=True, slots=True)
class Obligations:
    # None: every field; otherwise the dotted field paths the client may receive.
    fields: frozenset[str] | None = None
    limit: int = 0  # 0: no quota
    period_s: int = 0


NO_OBLIGATIONS = Obligations()


def parse_obligations(file: str, line: int, annotations: Mapping[str, str], effect: str) -> Obligations:
    """The obligations of one policy; raises ``PolicyInvalid`` naming ``file:line``."""
    fields_text, quota_text = annotations.get(FIELDS), annotations.get(QUOTA)
    if fields_text is None and quota_text is None:
        return NO_OBLIGATIONS
    if effect != "permit":
        raise PolicyInvalid(
            f"{file}:{line}: @{FIELDS} and @{QUOTA} belong on a permit, not a {effect}",
            hint="move the annotation to the permit that allows the call",
        )
    fields: frozenset[str] | None = None
    if fields_text is not None:
        names = [n.strip() for n in fields_text.split(",") if n.strip()]
        bad = [n for n in names if not _FIELD_PATH.fullmatch(n)]
        if not names or bad:
            raise PolicyInvalid(
                f"{file}:{line}: @{FIELDS}({fields_text!r}): {'no field names' if not names else f'bad name {bad[0]!r}'}",
                hint='list response field names separated by commas: @fields("name, address.city")',
            )
        fields = frozenset(names)
    limit = period = 0
    if quota_text is not None:
        match = _QUOTA.fullmatch(quota_text)
        if match is None or int(match.group(1)) == 0:
            raise PolicyInvalid(
                f"{file}:{line}: @{QUOTA}({quota_text!r}) is not a rate",
                hint='write calls per period, e.g. @quota("100/min"), @quota("5/10s"), @quota("1000/h")',
            )
        limit = int(match.group(1))
        period = int(match.group(2) or 1) * _UNIT_S[match.group(3)]
    return Obligations(fields, limit, period)


def combine(
    permits: Iterable[str], obligations: Mapping[str, Obligations]
) -> tuple[frozenset[str] | None, tuple[Quota, ...]]:
    """The fields the client may receive and the quotas to enforce, for the deciding permits."""
    fields: set[str] | None = set()
    quotas: list[Quota] = []
    for policy_id in permits:
        o = obligations.get(policy_id, NO_OBLIGATIONS)
        if o.fields is None:
            fields = None
        elif fields is not None:
            fields |= o.fields
        if o.limit:
            quotas.append(Quota(policy_id, o.limit, o.period_s))
    return (None if fields is None else frozenset(fields)), tuple(quotas)
