"""NATS subjects for audit records (the names themselves live in ``crossway.backbone``).

A gateway publishes to ``crossway.audit.<INSTANCE>.<CLASS>.<CODE>.<NAME>``: the gateway id's
``/``-separated parts become subject tokens, so an auditor can subscribe to one member's gateways
(``crossway.audit.EE.GOV.70000001.>``) or to everything (``crossway.audit.>``).

Inside a token, only ``A-Z a-z 0-9 -`` stay as they are; every other byte of the part's UTF-8 form
becomes ``_XX`` (upper-case hex). Ids may contain ``.`` (a subject separator) and ``_`` (our escape
character), so ``gw.1`` → ``gw_2E1`` and ``gw_1`` → ``gw_5F1``. The mapping is reversible and a
token never contains ``.``, ``*``, ``>`` or whitespace. The NATS server lets a gateway publish on
its own subject only (``crossway.natsauth``).
"""

from __future__ import annotations

from crossway.backbone import (
    AUDIT_PREFIX,
    CHECKPOINT_PREFIX,
    audit_subject,
    checkpoint_subject,
    cosignature_subject,
    gateway_from_tokens,
)
from crossway.core.errors import InvalidIdentifier

__all__ = [
    "AUDIT_SUBJECT_PREFIX",
    "AUDIT_SUBJECTS",
    "CHECKPOINT_SUBJECTS",
    "audit_subject",
    "checkpoint_subject",
    "cosignature_subject",
    "gateway_from_subject",
]

AUDIT_SUBJECT_PREFIX = AUDIT_PREFIX
AUDIT_SUBJECTS = AUDIT_SUBJECT_PREFIX + ".>"
# Checkpoints: crossway.checkpoint.signed.<gateway tokens> (by the gateway) and
# crossway.checkpoint.cosigned.<gateway tokens>.<cosigner> (by each cosigner), in their own stream.
CHECKPOINT_SUBJECT_PREFIX = CHECKPOINT_PREFIX
CHECKPOINT_SUBJECTS = CHECKPOINT_SUBJECT_PREFIX + ".>"


def gateway_from_subject(subject: str) -> str:
    """The gateway id an audit subject was made from (inverse of ``audit_subject``)."""
    prefix = AUDIT_SUBJECT_PREFIX + "."
    if not subject.startswith(prefix):
        raise InvalidIdentifier(f"subject {subject!r} is not an audit subject", hint=f"expected {AUDIT_SUBJECTS}")
    return gateway_from_tokens(subject[len(prefix) :])
