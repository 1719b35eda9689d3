"""The backbone's names: streams, KV buckets, subjects and consumer names — one place for all.

Every component and the permission generator (``crossway.natsauth``) build subjects here, so what
a gateway publishes on and what the NATS server lets it publish on cannot drift apart.

- a gateway id's ``/``-separated parts become subject tokens; inside a token only
  ``A-Z a-z 0-9 -`` stay as they are, every other byte becomes ``_XX`` (upper-case hex), so a
  token never holds ``.``, ``*``, ``>`` or whitespace and the mapping is reversible;
- consumer names are fixed per identity (``ck-<hash>``, ``rd-<hash>-<purpose>``): permissions
  name them exactly, because a consumer create request may *update* an existing consumer of the
  same name, filter included (checked on nats-server 2.15.1) — a wildcard name would let one
  identity redirect another's consumer;
- version ``n`` of a gateway's policies lives on its own subject (``crossway.policies.<gw>.<n>``),
  written once (expected last subject sequence 0) and read by direct get of that subject, so a
  gateway needs no consumer at all on the policy stream.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from cryptography import x509

from crossway.core.errors import ConfigError, InvalidIdentifier
from crossway.core.ids import GatewayId, MemberId

__all__ = [
    "ARCHIVE_PREFIX",
    "ARCHIVE_STREAM",
    "AUDIT_PREFIX",
    "AUDIT_STREAM",
    "CHECKPOINT_PREFIX",
    "CHECKPOINT_STREAM",
    "DUPLICATE_WINDOW_S",
    "EVIDENCE_STREAMS",
    "NATS_URI_SCHEME",
    "NatsIdentity",
    "NatsRole",
    "POLICY_PREFIX",
    "POLICY_STREAM",
    "REGISTRY_BUCKET",
    "REGISTRY_KEY",
    "StreamSpec",
    "archive_subject",
    "audit_subject",
    "checkpoint_subject",
    "CONSUMER_PURPOSES",
    "consumer_name",
    "cosignature_subject",
    "cosigner_token",
    "decode_token",
    "encode_token",
    "gateway_from_tokens",
    "gateway_tokens",
    "identity_of_certificate",
    "kv_stream",
    "kv_subject",
    "policy_version_subject",
    "policy_versions_subject",
    "registry_log_gateway",
    "replay_bucket",
    "short_hash",
]

AUDIT_STREAM = "CROSSWAY_AUDIT"
AUDIT_PREFIX = "crossway.audit"
CHECKPOINT_STREAM = "CROSSWAY_AUDIT_CHECKPOINTS"
CHECKPOINT_PREFIX = "crossway.checkpoint"
ARCHIVE_STREAM = "CROSSWAY_AUDIT_ARCHIVE"
ARCHIVE_PREFIX = "crossway.archive"
POLICY_STREAM = "CROSSWAY_POLICIES"
POLICY_PREFIX = "crossway.policies"
REGISTRY_BUCKET = "crossway-registry"
REGISTRY_KEY = "configuration"
REPLAY_BUCKET_PREFIX = "crossway-replay-"
# Must cover the longest gap between a lost ack and the spool replay of that record (1 h).
DUPLICATE_WINDOW_S = 3600.0

_PLAIN = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")
_ESCAPED = re.compile(rb"_([0-9A-F]{2})")


def encode_token(part: str) -> str:
    """One subject token for ``part`` (reversible; never ``.``, ``*``, ``>`` or blanks)."""
    return "".join(chr(b) if b in _PLAIN else f"_{b:02X}" for b in part.encode())


def decode_token(token: str) -> str:
    return _ESCAPED.sub(lambda m: bytes([int(m.group(1), 16)]), token.encode()).decode()


def gateway_tokens(gateway_id: str) -> str:
    """``EE/GOV/70000001/gw1`` → ``EE.GOV.70000001.gw1``. Raises InvalidIdentifier for a bad id."""
    gateway = GatewayId.parse(gateway_id)
    return ".".join(encode_token(p) for p in str(gateway).split("/"))


def gateway_from_tokens(tokens: str) -> str:
    return str(GatewayId.parse("/".join(decode_token(t) for t in tokens.split("."))))


def audit_subject(gateway_id: str) -> str:
    return f"{AUDIT_PREFIX}.{gateway_tokens(gateway_id)}"


def archive_subject(gateway_id: str) -> str:
    return f"{ARCHIVE_PREFIX}.{gateway_tokens(gateway_id)}"


def checkpoint_subject(gateway_id: str, kind: str) -> str:
    """Where a gateway's checkpoints go: ``kind`` is "signed" (by the gateway) or "cosigned"."""
    if kind not in ("signed", "cosigned"):
        raise ValueError(f"checkpoint subject kind {kind!r} is not signed/cosigned")
    return f"{CHECKPOINT_PREFIX}.{kind}.{gateway_tokens(gateway_id)}"


def cosignature_subject(gateway_id: str, cosigner_key_id: str) -> str:
    """Where one cosigner (witness) publishes its cosignatures of a gateway's checkpoints: the
    gateway's ``cosigned`` subject plus a token for the cosigner, so the last message per subject
    is each cosigner's latest (what the gateway reads to prove consistency to each of them)."""
    return f"{checkpoint_subject(gateway_id, 'cosigned')}.{cosigner_token(cosigner_key_id)}"


def cosigner_token(cosigner_key_id: str) -> str:
    """The subject token naming one cosigner: the first 16 characters of its key id."""
    return encode_token(cosigner_key_id[:16])


def policy_versions_subject(gateway_id: str) -> str:
    """All policy versions of one gateway: ``crossway.policies.<gw>.*``."""
    return f"{POLICY_PREFIX}.{gateway_tokens(gateway_id)}.*"


def policy_version_subject(gateway_id: str, number: int) -> str:
    if number < 1:
        raise ValueError(f"policy versions are numbered from 1, not {number}")
    return f"{POLICY_PREFIX}.{gateway_tokens(gateway_id)}.{number}"


def registry_log_gateway(instance: str) -> str:
    """The gateway id the registry's change log carries in the audit trail (its class REGISTRY is
    reserved, so no member holds it); the same as ``registry.changes.registry_log_id``."""
    return f"{instance}/REGISTRY/registry/registry"


def kv_stream(bucket: str) -> str:
    return f"KV_{bucket}"


def kv_subject(bucket: str, key: str = ">") -> str:
    return f"$KV.{bucket}.{key}"


def short_hash(text: str) -> str:
    """12 hex digits of SHA-256: short, fixed-charset names derived from an identity."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def replay_bucket(member: MemberId | str) -> str:
    """The KV bucket holding one member's shared replay window (all its gateways write it)."""
    member_id = MemberId.parse(str(member))
    return REPLAY_BUCKET_PREFIX + short_hash(str(member_id))


# What each kind of reader uses a consumer for; one exact name per (identity, purpose).
CONSUMER_PURPOSES = ("ck", "cs", "feed", "fetch")  # checkpointer, cosigner, indexer, tools


def consumer_name(identity_uri: str, purpose: str) -> str:
    """The consumer an identity uses for ``purpose`` — always the same name, so permissions can say it."""
    if purpose not in CONSUMER_PURPOSES:
        raise InvalidIdentifier(f"consumer purpose {purpose!r} is not one of {CONSUMER_PURPOSES}")
    return f"{purpose}-{short_hash(identity_uri)}"


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A stream the backbone needs; ``evidence`` streams refuse deletes, purges and roll-ups."""

    name: str
    subjects: tuple[str, ...]
    evidence: bool
    allow_direct: bool = False
    duplicate_window_s: float = DUPLICATE_WINDOW_S
    description: str = ""
    max_age_s: float = 0.0  # 0: kept for ever


EVIDENCE_STREAMS = (
    StreamSpec(AUDIT_STREAM, (f"{AUDIT_PREFIX}.>",), True, description="Crossway audit records"),
    # Direct get: a gateway reads each cosigner's latest cosignature of its own log, nothing else.
    StreamSpec(
        CHECKPOINT_STREAM,
        (f"{CHECKPOINT_PREFIX}.>",),
        True,
        allow_direct=True,
        description="Crossway signed checkpoints",
    ),
    StreamSpec(
        ARCHIVE_STREAM,
        (f"{ARCHIVE_PREFIX}.>",),
        True,
        description="Crossway archived payloads (encrypted to the auditors)",
    ),
    # Policy versions are evidence too: a purge-and-replay rolled a revoked permit back (issue 11).
    StreamSpec(POLICY_STREAM, (f"{POLICY_PREFIX}.>",), True, allow_direct=True, description="Crossway policies"),
)


# -- identities on the backbone (issued by crossway.security.natspki) --------------------------------

NATS_URI_SCHEME = "crossway-nats://"
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class NatsRole(enum.Enum):
    GATEWAY = "gateway"
    REGISTRY = "registry"
    INDEX = "index"
    COSIGNER = "cosigner"
    AUDITOR = "auditor"
    ADMIN = "admin"
    ROUTE = "route"


@dataclass(frozen=True, slots=True)
class NatsIdentity:
    """Who a NATS connection is: a role and a name (a gateway id, or a label like ``main``)."""

    role: NatsRole
    name: str

    def __post_init__(self) -> None:
        if self.role is NatsRole.GATEWAY:
            GatewayId.parse(self.name)  # raises InvalidIdentifier
        elif not _LABEL.fullmatch(self.name):
            raise InvalidIdentifier(
                f"NATS {self.role.value} name {self.name!r} has characters outside [A-Za-z0-9._-]",
                hint="use letters, digits, '.', '_' and '-' (at most 64)",
            )

    @classmethod
    def gateway(cls, gateway_id: GatewayId | str) -> NatsIdentity:
        return cls(NatsRole.GATEWAY, str(gateway_id))

    @property
    def uri(self) -> str:
        return f"{NATS_URI_SCHEME}{self.role.value}/{self.name}"

    def user(self, serial: int) -> str:
        """The NATS user name of one certificate of this identity (what verify_and_map matches)."""
        return f"{self.uri}?serial={serial:x}"

    @property
    def inbox_prefix(self) -> str:
        """``_INBOX.<role>.<name tokens>``: replies to this identity, and to nobody else."""
        return ".".join(["_INBOX", self.role.value, *(encode_token(p) for p in self.name.split("/"))])

    @property
    def key(self) -> str:
        """A short fixed-charset digest of the identity (consumer names, file names)."""
        return short_hash(self.uri)

    def consumer(self, purpose: str) -> str:
        """This identity's consumer for ``purpose`` (see crossway.backbone.consumer_name)."""
        return consumer_name(self.uri, purpose)

    def __str__(self) -> str:
        return f"{self.role.value} {self.name}"

    @classmethod
    def parse_user(cls, text: str) -> tuple[NatsIdentity, int]:
        """The identity and certificate serial a user name (or URI SAN) names."""
        parts = urlsplit(text)
        if not text.startswith(NATS_URI_SCHEME) or parts.fragment:
            raise InvalidIdentifier(f"{text!r} is not a {NATS_URI_SCHEME} identity")
        try:
            role = NatsRole(parts.netloc)
            serial = int(parse_qs(parts.query, strict_parsing=True)["serial"][0], 16)
        except (ValueError, KeyError) as exc:
            raise InvalidIdentifier(f"{text!r} is not a {NATS_URI_SCHEME}ROLE/NAME?serial=HEX identity") from exc
        return cls(role, parts.path.lstrip("/")), serial


def identity_of_certificate(cert: x509.Certificate) -> tuple[NatsIdentity, int]:
    """The one identity a NATS client certificate names (its single ``crossway-nats://`` URI SAN)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise ConfigError(
            "the NATS certificate has no subject alternative name", hint="use one the registry issued"
        ) from None
    uris = [u for u in san.get_values_for_type(x509.UniformResourceIdentifier) if u.startswith(NATS_URI_SCHEME)]
    if len(uris) != 1:
        raise ConfigError(
            f"a NATS certificate names exactly one {NATS_URI_SCHEME} identity; this one names {len(uris)}",
            hint="use a certificate the registry issued for NATS (crossway registry nats issue)",
        )
    return NatsIdentity.parse_user(uris[0])
