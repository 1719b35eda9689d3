"""Numbered, signed policy versions of one gateway, pushed over NATS to all its replicas.

Every replica of a gateway subscribes to one JetStream subject (``crossway.policies.<gateway>``)
from its first message, so each holds the whole history and the newest version is the one in
force. Applying publishes the next number with an *expected last subject sequence*: two admins
applying at once cannot both get the same number (the loser gets ``admin.conflict``).

Steps for each version a replica receives, failing closed (the version is ignored, loudly):
1. the message parses as a ``SignedPolicyVersion``;
2. its signature verifies with a signing key the registry lists for this gateway's member;
3. the version names this gateway and is exactly the next number;
4. the files validate against the served methods (done by the listener: ``PolicyManager``).
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import nats
from nats.js.api import DeliverPolicy, StreamConfig
from nats.js.errors import BadRequestError

from crossway.core.errors import AdminConflict, CrosswayError, SignatureInvalid
from crossway.natsclient import connection_state
from crossway.security.signing import Signer, verify_signature
from protos.crossway.v1 import admin_pb2 as pb

__all__ = [
    "POLICY_STREAM",
    "NatsPolicyVersions",
    "PolicyVersion",
    "files_digest",
    "policy_subject",
    "unified_diff",
]

log = logging.getLogger(__name__)

POLICY_STREAM = "CROSSWAY_POLICIES"
POLICY_SUBJECT_PREFIX = "crossway.policies"

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


def _token(part: str) -> str:
    # A subject token may not hold '.', '*', '>' or spaces: escape all but [A-Za-z0-9-].
    return re.sub(r"[^A-Za-z0-9-]", lambda m: "".join(f"_{b:02X}" for b in m.group().encode()), part)


def policy_subject(gateway_id: str) -> str:
    """``crossway.policies.EE.GOV.70000002.gw1`` — one subject per gateway (all its replicas)."""
    return ".".join([POLICY_SUBJECT_PREFIX, *(_token(p) for p in gateway_id.split("/"))])


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
        nats_url: str,
        gateway_id: str,
        member: str,
        signer: Signer,
        keys: Callable[[], KeyLookup],
        listener: Listener,
        *,
        replicas: int = 1,
    ) -> None:
        self._url, self._gateway, self._member = nats_url, gateway_id, member
        self._signer, self._keys, self._listener = signer, keys, listener
        self._replicas = replicas
        self._subject = policy_subject(gateway_id)
        self._history: list[PolicyVersion] = []
        self._last_sequence = 0  # stream sequence of the newest message on our subject
        self._nc: Any = None
        self._sub: Any = None
        self._changed = asyncio.Condition()

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
        self._nc = await nats.connect(self._url, max_reconnect_attempts=-1, name="crossway-policy-versions")
        js = self._nc.jetstream()
        config = StreamConfig(name=POLICY_STREAM, subjects=[f"{POLICY_SUBJECT_PREFIX}.>"], num_replicas=self._replicas)
        with contextlib.suppress(BadRequestError):  # already there (another gateway made it)
            await js.add_stream(config)
        info = await js.stream_info(POLICY_STREAM, subjects_filter=self._subject)
        pending = (info.state.subjects or {}).get(self._subject, 0)
        self._sub = await js.subscribe(
            self._subject, cb=self._on_message, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
        )
        # Catch up with the history before serving, so a restarted replica starts on the newest.
        deadline = asyncio.get_running_loop().time() + wait_s
        async with self._changed:
            while len(self._history) < pending and asyncio.get_running_loop().time() < deadline:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.2)

    async def _on_message(self, msg: Any) -> None:
        self._last_sequence = max(self._last_sequence, msg.metadata.sequence.stream)
        try:
            version = open_version(msg.data, self._member, self._keys())
            # 3. ours, and the next number (a gap or a repeat means a forged or misrouted push)
            if version.gateway != self._gateway or version.number != self.latest_number + 1:
                raise SignatureInvalid(
                    f"policy version {version.number} for {version.gateway} is not the next version of {self._gateway}"
                )
        except CrosswayError as exc:
            log.error("ignored a pushed policy version on %s: %s", self._subject, exc.message)
            return
        self._history.append(version)
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
                self._subject,
                sign_version(version, self._signer),
                stream=POLICY_STREAM,
                headers={"Nats-Expected-Last-Subject-Sequence": str(self._last_sequence)},
            )
        except BadRequestError as exc:  # wrong last sequence: someone else applied first
            raise AdminConflict(f"policy version {version.number} was not accepted: {exc.description}") from exc
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.latest_number >= version.number), timeout_s)

    async def aclose(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
