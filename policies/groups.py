"""Local groups: sets of clients a provider names in ``local-groups.json`` in its policy directory.

    {"tax-authorities": ["EE/GOV/70000001/tax", "EE/GOV/70000003"]}

An entry is a subsystem id or a member id (meaning every subsystem of that member). A policy
refers to a group as ``principal in Crossway::LocalGroup::"tax-authorities"``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from types import MappingProxyType

from crossway.core.errors import InvalidIdentifier
from crossway.core.ids import MemberId, SubsystemId
from policies.errors import PolicyInvalid

__all__ = ["LOCAL_GROUPS_FILE", "parse_local_groups"]

LOCAL_GROUPS_FILE = "local-groups.json"

# The same charset as subsystem names: group names become Cedar entity ids and log fields.
_GROUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def parse_local_groups(file: str, text: str) -> Mapping[str, frozenset[str]]:
    """Map each listed member or subsystem id to the names of the groups that list it."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyInvalid(f"{file}:{exc.lineno}: not JSON: {exc.msg}", hint="fix the JSON syntax") from exc
    if not isinstance(raw, dict):
        raise PolicyInvalid(f"{file}:1: expected an object of group name -> list of ids")
    members: dict[str, set[str]] = {}
    for name, entries in raw.items():
        if not _GROUP_NAME.fullmatch(name):
            raise PolicyInvalid(
                f"{file}: group name {name!r} has characters outside the allowed set",
                hint="group names use letters, digits, '.', '_' and '-' (at most 64)",
            )
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise PolicyInvalid(f"{file}: group {name!r} must be a list of id strings")
        for entry in entries:
            members.setdefault(_client_id(file, name, entry), set()).add(name)
    return MappingProxyType({k: frozenset(v) for k, v in members.items()})


def _client_id(file: str, group: str, entry: str) -> str:
    # Parse to reject typos and wildcards; store the canonical text the decision point looks up.
    try:
        return str(MemberId.parse(entry) if entry.count("/") == 2 else SubsystemId.parse(entry))
    except InvalidIdentifier as exc:
        raise PolicyInvalid(f"{file}: group {group!r}: {exc.message}", hint=exc.hint) from exc
