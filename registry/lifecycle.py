"""Taking back what the registry admitted: remove or disable members, subsystems, gateways,
services and groups (issue 17).

Two states, kept in ``registry.db`` (table ``registry_lifecycle``, its own connection, so the
store's tables keep their meaning):

- **disabled** — still in the published configuration, and listed in its ``disabled`` field as
  ``KIND:ID``; every gateway refuses it with its own code within one configuration push:
  ``client.disabled`` (a subsystem or member calling), ``service.disabled`` (a service, or one of
  a disabled subsystem or member), ``peer.disabled`` (a gateway, or one of a disabled member); a
  disabled group no longer counts in policy decisions. ``enable`` undoes it.
- **removed** — gone from the published configuration (a removed member takes its subsystems,
  gateways and services with it; a removed gateway or member has its certificates listed as
  revoked). Removal is final and the id stays reserved: old audit records keep meaning what they
  meant, and an id never comes back naming someone else.

The published document is the store's (``registry.document``) with this applied on top
(:meth:`Lifecycle.apply`), so a change here changes the state digest and is published within the
publisher's poll interval (a second).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from crossway.core.errors import ConfigError
from crossway.core.ids import GatewayId, MemberId, ServiceId, SubsystemId
from protos.crossway.v1 import registry_pb2
from registry.store import RegistryStore

__all__ = ["KINDS", "Lifecycle", "LifecycleEntry"]

KINDS: Final = ("member", "subsystem", "gateway", "service", "group")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS registry_lifecycle (
    kind TEXT NOT NULL, id TEXT NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL, at_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, id));
"""

_PARSERS: Final[dict[str, Callable[[str], object]]] = {
    "member": MemberId.parse,
    "subsystem": SubsystemId.parse,
    "gateway": GatewayId.parse,
    "service": ServiceId.parse,
    "group": str,
}


@dataclass(frozen=True, slots=True)
class LifecycleEntry:
    kind: str
    id: str
    state: str  # "disabled" | "removed"
    reason: str
    at_ms: int


class Lifecycle:
    def __init__(
        self,
        db_path: Path,
        store: RegistryStore,
        now_ms: Callable[[], int],
        record: Callable[[sqlite3.Connection, str], object] | None = None,
    ) -> None:
        self._db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self._store = store
        self._now_ms = now_ms
        # The change log's append, inside the same transaction (registry.changes).
        self._record = record

    def _write(self, sql: str, values: tuple[object, ...], what: str) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(sql, values)
            if self._record is not None:
                self._record(self._db, what)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()

    # -- changes ------------------------------------------------------------------------------

    def _known(self, kind: str, ident: str) -> str:
        """The canonical id, after checking it is well formed and registered."""
        if kind not in _PARSERS:
            raise ConfigError(f"cannot disable or remove a {kind!r}", hint=f"one of {', '.join(KINDS)}")
        text = str(_PARSERS[kind](ident))
        store = self._store
        members = {str(m.id) for m in store.members()}
        if kind == "member":
            found = text in members
        elif kind == "subsystem":
            found = any(text == str(s) for m in store.members() for s in store.subsystems_of(m.id))
        elif kind == "gateway":
            found = any(text == str(g.id) for m in store.members() for g in store.gateways_of(m.id))
        elif kind == "service":
            found = any(text == str(s.id) for s in store.services())
        else:
            found = text in store.groups()
        if not found:
            raise ConfigError(f"{kind} {text} is not registered", hint="`crossway registry list` shows what is")
        return text

    def state(self, kind: str, ident: str) -> LifecycleEntry | None:
        row = self._db.execute(
            "SELECT kind, id, state, reason, at_ms FROM registry_lifecycle WHERE kind = ? AND id = ?", (kind, ident)
        ).fetchone()
        return LifecycleEntry(*row) if row else None

    def _set(self, kind: str, ident: str, state: str, reason: str) -> str:
        text = self._known(kind, ident)
        current = self.state(kind, text)
        if current is not None and current.state == "removed":
            raise ConfigError(f"{kind} {text} was removed; removal is final", hint="register it under a new id")
        verb = "disable" if state == "disabled" else "remove"
        self._write(
            "INSERT OR REPLACE INTO registry_lifecycle VALUES (?, ?, ?, ?, ?)",
            (kind, text, state, reason, self._now_ms()),
            f"{verb} {kind} {text}" + (f" ({reason})" if reason else ""),
        )
        return text

    def disable(self, kind: str, ident: str, reason: str = "") -> str:
        return self._set(kind, ident, "disabled", reason)

    def remove(self, kind: str, ident: str, reason: str = "") -> str:
        return self._set(kind, ident, "removed", reason)

    def enable(self, kind: str, ident: str) -> str:
        text = self._known(kind, ident)
        current = self.state(kind, text)
        if current is None:
            raise ConfigError(f"{kind} {text} is not disabled", hint="nothing to enable")
        if current.state == "removed":
            raise ConfigError(f"{kind} {text} was removed; removal is final", hint="register it under a new id")
        self._write("DELETE FROM registry_lifecycle WHERE kind = ? AND id = ?", (kind, text), f"enable {kind} {text}")
        return text

    def entries(self) -> list[LifecycleEntry]:
        rows = self._db.execute("SELECT kind, id, state, reason, at_ms FROM registry_lifecycle ORDER BY kind, id")
        return [LifecycleEntry(*row) for row in rows.fetchall()]

    # -- the published document ---------------------------------------------------------------

    def apply(self, document: bytes) -> bytes:
        """The store's ``ConfigurationDocument`` with removals taken out and disabled ids listed."""
        entries = self.entries()
        if not entries:
            return document
        removed = {(e.kind, e.id) for e in entries if e.state == "removed"}
        disabled = {f"{e.kind}:{e.id}" for e in entries if e.state == "disabled"}
        doc = registry_pb2.ConfigurationDocument.FromString(document)

        def gone(kind: str, ident: str) -> bool:
            return (kind, ident) in removed

        def subsystem_gone(text: str) -> bool:
            subsystem = SubsystemId.parse(text)
            return gone("subsystem", text) or gone("member", str(subsystem.member))

        revoked = set(doc.revoked_serials)
        for cert in self._store.certificates():
            owner_gone = gone("member", str(cert.member)) or (
                cert.gateway is not None and gone("gateway", str(cert.gateway))
            )
            if owner_gone and not cert.revoked:
                revoked.add(cert.serial)
        _keep(doc.members, lambda m: not gone("member", m.id))
        for member in doc.members:
            _keep(member.subsystems, lambda s: not gone("subsystem", s.id))
            _keep(member.gateways, lambda g: not gone("gateway", g.id))
        _keep(
            doc.services,
            lambda s: not gone("service", s.id) and not subsystem_gone(str(ServiceId.parse(s.id).subsystem)),
        )
        _keep(doc.groups, lambda g: not gone("group", g.id))
        for group in doc.groups:
            kept = [s for s in group.members if not subsystem_gone(s)]
            del group.members[:]
            group.members.extend(kept)
        del doc.revoked_serials[:]
        doc.revoked_serials.extend(sorted(revoked))
        doc.disabled.extend(sorted(disabled))
        return doc.SerializeToString(deterministic=True)


def _keep(repeated: Any, keep: Callable[[Any], bool]) -> None:
    """Filter a protobuf repeated message field in place (each message has an ``id``)."""
    kept = [item for item in repeated if keep(item)]
    del repeated[:]
    repeated.extend(kept)
