"""NATS subjects for audit records.

A gateway publishes to ``crossway.audit.<INSTANCE>.<CLASS>.<CODE>.<NAME>``: the gateway id's
``/``-separated parts become subject tokens, so an auditor can subscribe to one member's gateways
(``crossway.audit.EE.GOV.70000001.>``) or to everything (``crossway.audit.>``).

Inside a token, only ``A-Z a-z 0-9 -`` stay as they are; every other byte of the part's UTF-8 form
becomes ``_XX`` (upper-case hex). Ids may contain ``.`` (a subject separator) and ``_`` (our escape
character), so ``gw.1`` → ``gw_2E1`` and ``gw_1`` → ``gw_5F1``. The mapping is reversible and a
token never contains ``.``, ``*``, ``>`` or whitespace.
"""

from __future__ import annotations

import re

from crossway.core.errors import InvalidIdentifier
from crossway.core.ids import GatewayId

__all__ = [
    "AUDIT_SUBJECT_PREFIX",
    "AUDIT_SUBJECTS",
    "CHECKPOINT_SUBJECTS",
    "audit_subject",
    "checkpoint_subject",
    "cosignature_subject",
    "gateway_from_subject",
]

AUDIT_SUBJECT_PREFIX = "crossway.audit"
AUDIT_SUBJECTS = AUDIT_SUBJECT_PREFIX + ".>"
# Checkpoints: crossway.checkpoint.signed.<gateway tokens> (by the gateway) and
# crossway.checkpoint.cosigned.<gateway tokens>.<cosigner> (by each cosigner), in their own stream.
CHECKPOINT_SUBJECT_PREFIX = "crossway.checkpoint"
CHECKPOINT_SUBJECTS = CHECKPOINT_SUBJECT_PREFIX + ".>"

_PLAIN = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")
_ESCAPED = re.compile(rb"_([0-9A-F]{2})")


def _encode(part: str) -> str:
    return "".join(chr(b) if b in _PLAIN else f"_{b:02X}" for b in part.encode())


def _decode(token: str) -> str:
    return _ESCAPED.sub(lambda m: bytes([int(m.group(1), 16)]), token.encode()).decode()


def audit_subject(gateway_id: str) -> str:
    """The subject a gateway's audit records go to. Raises InvalidIdentifier for a bad id."""
    gateway = GatewayId.parse(gateway_id)
    return ".".join([AUDIT_SUBJECT_PREFIX, *(_encode(p) for p in str(gateway).split("/"))])


def gateway_from_subject(subject: str) -> str:
    """The gateway id an audit subject was made from (inverse of ``audit_subject``)."""
    prefix = AUDIT_SUBJECT_PREFIX + "."
    if not subject.startswith(prefix):
        raise InvalidIdentifier(f"subject {subject!r} is not an audit subject", hint=f"expected {AUDIT_SUBJECTS}")
    text = "/".join(_decode(t) for t in subject[len(prefix) :].split("."))
    return str(GatewayId.parse(text))


def checkpoint_subject(gateway_id: str, kind: str) -> str:
    """Where a gateway's checkpoints go: ``kind`` is "signed" (by the gateway) or "cosigned"."""
    if kind not in ("signed", "cosigned"):
        raise ValueError(f"checkpoint subject kind {kind!r} is not signed/cosigned")
    tokens = audit_subject(gateway_id)[len(AUDIT_SUBJECT_PREFIX) + 1 :]
    return f"{CHECKPOINT_SUBJECT_PREFIX}.{kind}.{tokens}"


def cosignature_subject(gateway_id: str, cosigner_key_id: str) -> str:
    """Where one cosigner (witness) publishes its cosignatures of a gateway's checkpoints: the
    gateway's ``cosigned`` subject plus a token for the cosigner, so the last message per subject
    is each cosigner's latest (what the gateway reads to prove consistency to each of them)."""
    return f"{checkpoint_subject(gateway_id, 'cosigned')}.{_encode(cosigner_key_id[:16])}"
