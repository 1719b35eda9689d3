"""Numbered, signed policy versions of one gateway, pushed over NATS to all its replicas.

Version ``n`` of a gateway lives on its own subject, ``crossway.policies.<gateway>.<n>``, in the
policy stream (an evidence stream: no delete, no purge). Every replica reads the history by
direct get of versions 1, 2, … until one is missing, and hears new ones through a core
subscription to ``crossway.policies.<gateway>.*`` — its NATS user may do exactly that and publish
there, nothing else with the stream. Applying publishes version ``n`` with an *expected last
subject sequence* of 0 ("nothing on this subject yet"): two admins applying at once cannot both
get the same number (the loser gets ``admin.conflict``).

Steps for each version a replica receives, failing closed (the version is ignored, loudly):
1. the message parses as a ``SignedPolicyVersion``;
2. its signature verifies with a signing key the registry lists for this gateway's member;
3. the version names this gateway and is exactly the next number;
4. the files validate against the served methods (done by the listener: ``PolicyManager``).

No rollback by replay (issue 11): the newest version number ever taken into the history is kept
on disk (``mark``), written before it is used. At start, a history on NATS that ends below the
mark — the stream was rebuilt and older signed versions replayed into it — is refused: no
version is installed and the ``on_rollback`` callback blocks the policies (every call is denied)
until the newest version is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import nats.errors
import nats.js.errors
from nats.js.errors import BadRequestError

from crossway.backbone import POLICY_PREFIX, POLICY_STREAM, policy_version_subject, policy_versions_subject
from crossway.core.errors import AdminConflict, CrosswayError, SignatureInvalid
from crossway.natsclient import NatsAccess, connect, connection_state
from crossway.security.signing import Signer, verify_signature
from protos.crossway.v1 import admin_pb2 as pb
from registry.source import read_mark, write_mark

__all__ = [
    "POLICY_STREAM",
    "NatsPolicyVersions",
    "PolicyVersion",
    "files_digest",
    "policy_subject",
    "unified_diff",
]

log = logging.getLogger(__name__)

POLICY_SUBJECT_PREFIX = POLICY_PREFIX

# (member id, key id) → public key or None (bound to the current registry configuration).
KeyLookup = Callable[[str, str], Any]
Listener = Callable[["PolicyVersion"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    number: int
    files: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    author: str = ""
    created_at_ms: int = 0
    summary: str = ""
    digest: str = ""
    diff_digest: str = ""
    rollback_of: int = 0
    gateway: str = ""

    def to_pb(self, *, with_files: bool = True) -> pb.PolicyVersion:
        return pb.PolicyVersion(
            number=self.number,
            files=[pb.PolicyFile(name=n, text=t) for n, t in sorted(self.files.items())] if with_files else [],
            author=self.author,
            created_at_ms=self.created_at_ms,
            summary=self.summary,
            digest=self.digest,
            diff_digest=self.diff_digest,
            rollback_of=self.rollback_of,
            gateway=self.gateway,
        )

    @classmethod
    def from_pb(cls, m: pb.PolicyVersion) -> PolicyVersion:
        return cls(
            number=m.number,
            files=MappingProxyType({f.name: f.text for f in m.files}),
            author=m.author,
            created_at_ms=m.created_at_ms,
            summary=m.summary,
            digest=m.digest,
            diff_digest=m.diff_digest,
            rollback_of=m.rollback_of,
            gateway=m.gateway,
        )


def files_digest(files: Mapping[str, str]) -> str:
    """SHA-256 over the files, names and lengths included, so no two file sets collide."""
    h = hashlib.sha256()
    for name in sorted(files):
        data = files[name].encode()
        h.update(f"{len(name)}:{name}:{len(data)}:".encode())
        h.update(data)
    return h.hexdigest()


def unified_diff(old: Mapping[str, str], new: Mapping[str, str], old_label: str, new_label: str) -> str:
    """A unified diff per file, in file-name order; empty when nothing changed."""
    out: list[str] = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name, ""), new.get(name, "")
        if a != b:
            out.extend(
                difflib.unified_diff(
                    a.splitlines(keepends=True),
                    b.splitlines(keepends=True),
                    f"{old_label}/{name}" if name in old else "/dev/null",
                    f"{new_label}/{name}" if name in new else "/dev/null",
                )
            )
    return "".join(line if line.endswith("\n") else line + "\n" for line in out)


def policy_subject(gateway_id: str) -> str:
    """``crossway.policies.EE.GOV.70000002.gw1.*`` — the subjects of one gateway's versions."""
    return policy_versions_subject(gateway_id)


def sign_version(version: PolicyVersion, signer: Signer) -> bytes:
    body = version.to_pb().SerializeToString()
    return pb.SignedPolicyVersion(
        version=body, algorithm=signer.algorithm, key_id=signer.key_id, signature=signer.sign(body)
    ).SerializeToString()


def open_version(data: bytes, member: str, keys: KeyLookup) -> PolicyVersion:
    """Steps 1–2: parse and verify a pushed version; raises ``SignatureInvalid``."""
    try:
        signed = pb.SignedPolicyVersion.FromString(data)
    except Exception as exc:  # any decode failure: not ours
        raise SignatureInvalid("a pushed policy version does not parse") from exc
    key = keys(member, signed.key_id)
    if key is None:
        raise SignatureInvalid(f"policy version signed with key {signed.key_id}, which {member} does not have")
    verify_signature(key, signed.algorithm, signed.version, signed.signature, key_id=signed.key_id)
    return PolicyVersion.from_pb(pb.PolicyVersion.FromString(signed.version))


class NatsPolicyVersions:
    """The history of one gateway's policy versions on JetStream; ``publish`` appends one."""

    def __init__(
        self,
        nats: NatsAccess,
        gateway_id: str,
        member: str,
        signer: Signer,
        keys: Callable[[], KeyLookup],
        listener: Listener,
        *,
        mark: Path | None = None,
        on_rollback: Callable[[str], None] | None = None,
        poll_s: float = 5.0,
    ) -> None:
        self._nats, self._gateway, self._member = nats, gateway_id, member
        self._signer, self._keys, self._listener = signer, keys, listener
        self._subject = policy_subject(gateway_id)
        self._mark_path = mark
        self._mark = read_mark(mark)
        self._on_rollback = on_rollback
        self._poll_s = poll_s
        self._history: list[PolicyVersion] = []
        self._nc: Any = None
        self._sub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._changed = asyncio.Condition()
        self.rolled_back: str | None = None  # why the history was refused at start

    @property
    def history(self) -> tuple[PolicyVersion, ...]:
        return tuple(self._history)

    @property
    def latest_number(self) -> int:
        return self._history[-1].number if self._history else 0

    @property
    def nats_state(self) -> tuple[str, str]:
        """(state, server) of the versions' NATS connection, for the gateway's status."""
        return connection_state(self._nc)

    async def start(self, *, wait_s: float = 5.0) -> None:
        async def reconnected() -> None:
            self._wake.set()

        self._nc = await connect(
            self._nats, name="crossway-policy-versions", max_reconnect_attempts=-1, reconnected_cb=reconnected
        )
        self._sub = await self._nc.subscribe(self._subject, cb=self._on_push)
        # Catch up with the history before serving, so a restarted replica starts on the newest.
        async with self._lock:
            await asyncio.wait_for(self._catch_up(install=False), max(wait_s, 1.0))
            await self._start_on_newest()
        self._task = asyncio.create_task(self._poll(), name=f"policy-versions {self._gateway}")

    async def _start_on_newest(self) -> None:
        """Install the newest version — unless the history is older than what was applied here."""
        latest = self.latest_number
        if latest < self._mark:
            self.rolled_back = (
                f"the policy history on NATS ends at version {latest}, but version {self._mark} was applied "
                f"here before: the stream was rebuilt or older versions replayed; none is installed"
            )
            log.critical("policy ROLLBACK refused for %s: %s", self._gateway, self.rolled_back)
            if self._on_rollback is not None:
                self._on_rollback(self.rolled_back)
            return
        if self._history:
            await self._install(self._history[-1])

    async def _read(self, number: int) -> bytes | None:
        js = self._nc.jetstream(timeout=5.0)
        try:
            msg = await js.get_last_msg(POLICY_STREAM, policy_version_subject(self._gateway, number), direct=True)
        except nats.js.errors.NotFoundError:
            return None
        return bytes(msg.data or b"")

    async def _catch_up(self, *, install: bool = True) -> None:
        """Read versions latest+1, latest+2, … by direct get until one is missing (caller holds the lock)."""
        while True:
            data = await self._read(self.latest_number + 1)
            if data is None or not await self._take(data, install=install):
                return

    async def _on_push(self, msg: Any) -> None:
        self._wake.set()  # the poller reads it (in order, under the lock) right away

    async def _poll(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_s)
            self._wake.clear()
            try:
                async with self._lock:
                    await self._catch_up(install=self.rolled_back is None)
            except (nats.errors.Error, TimeoutError, OSError) as exc:
                log.warning("policy versions of %s not read: %s", self._gateway, type(exc).__name__)

    async def _take(self, data: bytes, *, install: bool) -> bool:
        """Steps 1-3, then into the history (mark first) and, with ``install``, to the listener."""
        try:
            version = open_version(data, self._member, self._keys())
            # 3. ours, and the next number (a gap or a repeat means a forged or misrouted push)
            if version.gateway != self._gateway or version.number != self.latest_number + 1:
                raise SignatureInvalid(
                    f"policy version {version.number} for {version.gateway} is not the next version of {self._gateway}"
                )
        except CrosswayError as exc:
            log.error("ignored a pushed policy version on %s: %s", self._subject, exc.message)
            return False
        if self.rolled_back is not None and version.number >= self._mark:
            # The history reached what was applied here before: policies may be served again.
            log.warning("policy history of %s is back at version %d; installing it", self._gateway, version.number)
            self.rolled_back, install = None, True
        if version.number > self._mark:
            write_mark(self._mark_path, version.number)
            self._mark = version.number
        self._history.append(version)
        if install:
            await self._install(version)
        return True

    async def _install(self, version: PolicyVersion) -> None:
        try:
            await self._listener(version)
        finally:
            async with self._changed:
                self._changed.notify_all()

    async def publish(self, version: PolicyVersion, *, timeout_s: float = 2.0) -> None:
        """Append ``version`` (numbered latest + 1) and wait until this replica applied it."""
        js = self._nc.jetstream()
        try:
            await js.publish(
                policy_version_subject(self._gateway, version.number),
                sign_version(version, self._signer),
                stream=POLICY_STREAM,
                # Nothing on this version's subject yet: a second writer of the same number loses.
                headers={"Nats-Expected-Last-Subject-Sequence": "0"},
            )
        except BadRequestError as exc:  # wrong last sequence: someone else applied first
            raise AdminConflict(f"policy version {version.number} was not accepted: {exc.description}") from exc
        self._wake.set()
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.latest_number >= version.number), timeout_s)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
