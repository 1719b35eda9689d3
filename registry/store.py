"""The registry's database: members, subsystems, gateways, services, certificates, groups.

SQLite, one file, foreign keys on: the registry is a low-traffic admin tool whose whole state
must be easy to back up and inspect. Rows come back as frozen dataclasses; SQL stays here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from crossway.core.errors import ConfigError
from crossway.core.ids import GatewayId, MemberId, ServiceId, SubsystemId
from registry.records import (
    CertificateRecord,
    GatewayRecord,
    MailboxRecord,
    MemberRecord,
    NatsCertificateRecord,
    ServiceRecord,
    UserTokenKeyRecord,
)

__all__ = [
    "CertificateRecord",
    "NatsCertificateRecord",
    "GatewayRecord",
    "MailboxRecord",
    "MemberRecord",
    "RegistryStore",
    "ServiceRecord",
    "UserTokenKeyRecord",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS members (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, encryption_key BLOB);
CREATE TABLE IF NOT EXISTS subsystems (
    id TEXT PRIMARY KEY, member TEXT NOT NULL REFERENCES members(id));
CREATE TABLE IF NOT EXISTS gateways (
    id TEXT PRIMARY KEY, member TEXT NOT NULL REFERENCES members(id), peer_address TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS services (
    id TEXT PRIMARY KEY, subsystem TEXT NOT NULL REFERENCES subsystems(id),
    file_descriptor_set BLOB NOT NULL, require_encryption INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS group_members (
    code TEXT NOT NULL, subsystem TEXT NOT NULL REFERENCES subsystems(id), PRIMARY KEY (code, subsystem));
CREATE TABLE IF NOT EXISTS certificates (
    serial TEXT PRIMARY KEY, kind TEXT NOT NULL, member TEXT NOT NULL REFERENCES members(id),
    gateway TEXT REFERENCES gateways(id), sha256 TEXT NOT NULL UNIQUE, der BLOB NOT NULL,
    issued_at_ms INTEGER NOT NULL, revoked_at_ms INTEGER, revoke_reason TEXT);
CREATE TABLE IF NOT EXISTS user_token_keys (
    member TEXT NOT NULL REFERENCES members(id), key_id TEXT NOT NULL, der BLOB NOT NULL,
    PRIMARY KEY (member, key_id));
CREATE TABLE IF NOT EXISTS user_token_issuers (
    member TEXT PRIMARY KEY REFERENCES members(id), issuer TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nats_certificates (
    serial TEXT PRIMARY KEY, role TEXT NOT NULL, name TEXT NOT NULL, sha256 TEXT NOT NULL UNIQUE,
    der BLOB NOT NULL, issued_at_ms INTEGER NOT NULL, not_after_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER, revoke_reason TEXT);
CREATE TABLE IF NOT EXISTS witnesses (
    id TEXT PRIMARY KEY, public_key BLOB NOT NULL UNIQUE, member TEXT);
CREATE TABLE IF NOT EXISTS mailboxes (
    id TEXT PRIMARY KEY REFERENCES subsystems(id), message_types TEXT NOT NULL,
    file_descriptor_set BLOB NOT NULL, document_content_types TEXT NOT NULL,
    require_encryption INTEGER NOT NULL, acceptance INTEGER NOT NULL, acceptance_window_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS topics (
    id TEXT PRIMARY KEY, publisher TEXT NOT NULL REFERENCES subsystems(id), event_type TEXT NOT NULL,
    file_descriptor_set BLOB NOT NULL, key_field TEXT NOT NULL);
"""


class RegistryStore:
    """Typed access to ``registry.db``. Every write is its own transaction."""

    def __init__(self, path: Path) -> None:
        self._path = path
        # check_same_thread=False: the gRPC server and publisher call in from the event loop's
        # executor; SQLite serializes writers itself and every call here is short.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.executescript(_SCHEMA)
        # Called with the open transaction and its description before each change commits
        # (registry.changes: the signed change log, issue 17); None records nothing.
        self.on_change: Callable[[sqlite3.Connection, str], object] | None = None

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self, what: str, *, change: bool = True) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            yield self._db
            if change and self.on_change is not None:
                self.on_change(self._db, what)
            self._db.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            self._db.execute("ROLLBACK")
            raise ConfigError(f"cannot {what}: {exc}", hint="check that it is new and that its parent exists") from exc
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    # -- meta ---------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._tx(f"set {key}") as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def next_configuration_serial(self) -> int:
        """Increment and return the configuration serial, atomically."""
        with self._tx("increment the configuration serial", change=False) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'configuration_serial'").fetchone()
            serial = (int(row[0]) if row else 0) + 1
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('configuration_serial', ?)", (str(serial),))
        return serial

    # -- members and their parts --------------------------------------------------------------
    def _require(self, table: str, key: str, what: str) -> None:
        if self._db.execute(f"SELECT 1 FROM {table} WHERE id = ?", (key,)).fetchone() is None:  # noqa: S608
            raise ConfigError(f"{what} {key} is not registered", hint=f"add the {what} first")

    def _refuse_duplicate(self, table: str, key: str, what: str) -> None:
        if self._db.execute(f"SELECT 1 FROM {table} WHERE id = ?", (key,)).fetchone() is not None:  # noqa: S608
            raise ConfigError(f"{what} {key} is already registered", hint=f"choose another {what} id")

    def add_member(self, member: MemberId, name: str) -> None:
        self._refuse_duplicate("members", str(member), "member")
        with self._tx(f"add member {member}") as db:
            db.execute("INSERT INTO members (id, name) VALUES (?, ?)", (str(member), name))

    def add_subsystem(self, subsystem: SubsystemId) -> None:
        self._require("members", str(subsystem.member), "member")
        self._refuse_duplicate("subsystems", str(subsystem), "subsystem")
        with self._tx(f"add subsystem {subsystem}") as db:
            db.execute("INSERT INTO subsystems (id, member) VALUES (?, ?)", (str(subsystem), str(subsystem.member)))

    def add_gateway(self, gateway: GatewayId, peer_address: str) -> None:
        self._require("members", str(gateway.member), "member")
        self._refuse_duplicate("gateways", str(gateway), "gateway")
        with self._tx(f"add gateway {gateway}") as db:
            db.execute(
                "INSERT INTO gateways (id, member, peer_address) VALUES (?, ?, ?)",
                (str(gateway), str(gateway.member), peer_address),
            )

    def set_gateway_address(self, gateway: GatewayId, peer_address: str) -> None:
        self._require("gateways", str(gateway), "gateway")
        with self._tx(f"move gateway {gateway}") as db:
            db.execute("UPDATE gateways SET peer_address = ? WHERE id = ?", (peer_address, str(gateway)))

    def add_service(self, service: ServiceId, file_descriptor_set: bytes, require_encryption: bool) -> None:
        self._require("subsystems", str(service.subsystem), "subsystem")
        self._refuse_duplicate("services", str(service), "service")
        with self._tx(f"add service {service}") as db:
            db.execute(
                "INSERT INTO services (id, subsystem, file_descriptor_set, require_encryption) VALUES (?, ?, ?, ?)",
                (str(service), str(service.subsystem), file_descriptor_set, int(require_encryption)),
            )

    def put_mailbox(self, mailbox: MailboxRecord) -> None:
        """Add a subsystem's mailbox, or replace it (a mailbox is reconfigured, never duplicated)."""
        self._require("subsystems", str(mailbox.subsystem), "subsystem")
        with self._tx(f"set the mailbox of {mailbox.subsystem}") as db:
            db.execute(
                "INSERT OR REPLACE INTO mailboxes (id, message_types, file_descriptor_set, document_content_types,"
                " require_encryption, acceptance, acceptance_window_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    str(mailbox.subsystem),
                    "\n".join(mailbox.message_types),
                    mailbox.file_descriptor_set,
                    "\n".join(mailbox.document_content_types),
                    int(mailbox.require_encryption),
                    mailbox.acceptance,
                    mailbox.acceptance_window_ms,
                ),
            )

    def mailboxes(self) -> list[MailboxRecord]:
        rows = self._db.execute(
            "SELECT id, message_types, file_descriptor_set, document_content_types, require_encryption,"
            " acceptance, acceptance_window_ms FROM mailboxes ORDER BY id"
        ).fetchall()
        return [
            MailboxRecord(
                SubsystemId.parse(i),
                tuple(t for t in types.split("\n") if t),
                bytes(fds),
                tuple(d for d in docs.split("\n") if d),
                bool(enc),
                int(mode),
                int(window),
            )
            for i, types, fds, docs, enc, mode, window in rows
        ]

    def put_topic(self, topic: str, publisher: SubsystemId, event_type: str, fds: bytes, key_field: str) -> None:
        """Add a topic (issue 15), or reconfigure it: its id never changes owner."""
        self._require("subsystems", str(publisher), "subsystem")
        with self._tx(f"set topic {topic}") as db:
            db.execute(
                "INSERT OR REPLACE INTO topics (id, publisher, event_type, file_descriptor_set, key_field)"
                " VALUES (?, ?, ?, ?, ?)",
                (topic, str(publisher), event_type, fds, key_field),
            )

    def topics(self) -> list[tuple[str, str, bytes, str]]:
        """(topic id, event type, descriptor set, key field), by id."""
        rows = self._db.execute(
            "SELECT id, event_type, file_descriptor_set, key_field FROM topics ORDER BY id"
        ).fetchall()
        return [(str(i), str(t), bytes(f), str(k)) for i, t, f, k in rows]

    def set_encryption_key(self, member: MemberId, public_raw: bytes) -> None:
        self._require("members", str(member), "member")
        with self._tx(f"set the encryption key of {member}") as db:
            db.execute("UPDATE members SET encryption_key = ? WHERE id = ?", (public_raw, str(member)))

    def add_user_token_key(self, member: MemberId, key_id: str, der: bytes) -> None:
        self._require("members", str(member), "member")
        with self._tx(f"add a user-token key of {member}") as db:
            db.execute(
                "INSERT OR IGNORE INTO user_token_keys (member, key_id, der) VALUES (?, ?, ?)",
                (str(member), key_id, der),
            )

    def remove_user_token_key(self, member: MemberId, key_id: str) -> bool:
        with self._tx(f"remove a user-token key of {member}") as db:
            cursor = db.execute("DELETE FROM user_token_keys WHERE member = ? AND key_id = ?", (str(member), key_id))
        return cursor.rowcount > 0

    def user_token_keys(self, member: MemberId) -> list[UserTokenKeyRecord]:
        rows = self._db.execute(
            "SELECT key_id, der FROM user_token_keys WHERE member = ? ORDER BY key_id", (str(member),)
        ).fetchall()
        return [UserTokenKeyRecord(member, k, bytes(d)) for k, d in rows]

    def set_user_token_issuer(self, member: MemberId, issuer: str) -> None:
        self._require("members", str(member), "member")
        with self._tx(f"set the user-token issuer of {member}") as db:
            db.execute(
                "INSERT OR REPLACE INTO user_token_issuers (member, issuer) VALUES (?, ?)", (str(member), issuer)
            )

    def user_token_issuer(self, member: MemberId) -> str:
        """The ``iss`` the member's end-user tokens carry; "" when not set (the member id is used)."""
        row = self._db.execute("SELECT issuer FROM user_token_issuers WHERE member = ?", (str(member),)).fetchone()
        return "" if row is None else str(row[0])

    def add_witness(self, name: str, public_raw: bytes, member: MemberId | None) -> None:
        if member is not None:
            self._require("members", str(member), "member")
        self._refuse_duplicate("witnesses", name, "witness")
        with self._tx(f"add witness {name}") as db:
            db.execute(
                "INSERT INTO witnesses (id, public_key, member) VALUES (?, ?, ?)",
                (name, public_raw, None if member is None else str(member)),
            )

    def witnesses(self) -> list[tuple[str, bytes, str]]:
        """(name, raw Ed25519 public key, member or "") of every witness, by name."""
        rows = self._db.execute("SELECT id, public_key, member FROM witnesses ORDER BY id").fetchall()
        return [(str(n), bytes(k), str(m or "")) for n, k, m in rows]

    def add_group(self, code: str, subsystems: list[SubsystemId]) -> None:
        for subsystem in subsystems:
            self._require("subsystems", str(subsystem), "subsystem")
        with self._tx(f"add group {code}") as db:
            db.executemany(
                "INSERT OR IGNORE INTO group_members (code, subsystem) VALUES (?, ?)",
                [(code, str(s)) for s in subsystems],
            )

    def has_member(self, member: MemberId) -> bool:
        return self._db.execute("SELECT 1 FROM members WHERE id = ?", (str(member),)).fetchone() is not None

    def has_gateway(self, gateway: GatewayId) -> bool:
        return self._db.execute("SELECT 1 FROM gateways WHERE id = ?", (str(gateway),)).fetchone() is not None

    def members(self) -> list[MemberRecord]:
        rows = self._db.execute("SELECT id, name, encryption_key FROM members ORDER BY id").fetchall()
        return [MemberRecord(MemberId.parse(i), n, bytes(k) if k else None) for i, n, k in rows]

    def subsystems_of(self, member: MemberId) -> list[SubsystemId]:
        rows = self._db.execute("SELECT id FROM subsystems WHERE member = ? ORDER BY id", (str(member),)).fetchall()
        return [SubsystemId.parse(r[0]) for r in rows]

    def gateways_of(self, member: MemberId) -> list[GatewayRecord]:
        rows = self._db.execute(
            "SELECT id, peer_address FROM gateways WHERE member = ? ORDER BY id", (str(member),)
        ).fetchall()
        return [GatewayRecord(GatewayId.parse(i), a) for i, a in rows]

    def services(self) -> list[ServiceRecord]:
        rows = self._db.execute(
            "SELECT id, file_descriptor_set, require_encryption FROM services ORDER BY id"
        ).fetchall()
        return [ServiceRecord(ServiceId.parse(i), bytes(f), bool(e)) for i, f, e in rows]

    def groups(self) -> dict[str, list[SubsystemId]]:
        out: dict[str, list[SubsystemId]] = {}
        for code, subsystem in self._db.execute("SELECT code, subsystem FROM group_members ORDER BY code, subsystem"):
            out.setdefault(code, []).append(SubsystemId.parse(subsystem))
        return out

    # -- certificates --------------------------------------------------------------------------
    def record_certificate(self, record: CertificateRecord) -> None:
        with self._tx(f"record certificate {record.serial}") as db:
            db.execute(
                "INSERT INTO certificates (serial, kind, member, gateway, sha256, der, issued_at_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.serial,
                    record.kind,
                    str(record.member),
                    None if record.gateway is None else str(record.gateway),
                    record.sha256,
                    record.der,
                    record.issued_at_ms,
                ),
            )

    def revoke(self, serial: str, reason: str, at_ms: int) -> None:
        # Either table: a gateway's TLS or signing certificate, or a NATS identity certificate.
        for table in ("certificates", "nats_certificates"):
            row = self._db.execute(f"SELECT revoked_at_ms FROM {table} WHERE serial = ?", (serial,)).fetchone()  # noqa: S608 (constant names)
            if row is None:
                continue
            if row[0] is not None:
                return  # revoking twice is a no-op; the first time and reason stand
            with self._tx(f"revoke {serial}") as db:
                db.execute(
                    f"UPDATE {table} SET revoked_at_ms = ?, revoke_reason = ? WHERE serial = ?",  # noqa: S608
                    (at_ms, reason, serial),
                )
            return
        raise ConfigError(f"no certificate with serial {serial} was issued here", hint="`registry list` shows them")

    def record_nats_certificate(self, record: NatsCertificateRecord, der: bytes) -> None:
        with self._tx(f"record NATS certificate {record.serial}") as db:
            db.execute(
                "INSERT INTO nats_certificates (serial, role, name, sha256, der, issued_at_ms, not_after_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.serial,
                    record.role,
                    record.name,
                    record.sha256,
                    der,
                    record.issued_at_ms,
                    record.not_after_ms,
                ),
            )

    def nats_certificates(self) -> list[NatsCertificateRecord]:
        rows = self._db.execute(
            "SELECT serial, role, name, sha256, issued_at_ms, not_after_ms, revoked_at_ms, revoke_reason"
            " FROM nats_certificates ORDER BY issued_at_ms, serial"
        ).fetchall()
        return [NatsCertificateRecord(*row) for row in rows]

    def certificates(self) -> list[CertificateRecord]:
        rows = self._db.execute(
            "SELECT serial, kind, member, gateway, sha256, der, issued_at_ms, revoked_at_ms, revoke_reason"
            " FROM certificates ORDER BY issued_at_ms, serial"
        ).fetchall()
        return [
            CertificateRecord(
                serial=s,
                kind=k,
                member=MemberId.parse(m),
                gateway=None if g is None else GatewayId.parse(g),
                sha256=h,
                der=bytes(d),
                issued_at_ms=i,
                revoked_at_ms=r,
                revoke_reason=why,
            )
            for s, k, m, g, h, d, i, r, why in rows
        ]
