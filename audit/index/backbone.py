"""What NATS itself holds, for ``audit verify --nats``: an index cannot vouch for its own extent.

An index can be edited consistently — rows, checkpoint rows and cursor truncated together —
and still agree with itself. The backbone's streams are out of the index operator's reach
(deny-delete, deny-purge; nats-security.md §4), so ``verify`` compares the index with:

- each gateway's latest cosigned checkpoint in the checkpoint stream (last message per
  ``crossway.checkpoint.cosigned.<gateway>`` subject: one request each, however long the log);
- the audit stream's message at a given sequence, to name which of several candidate rows was
  rewritten together with its leaf hash (``verify.refine_with_stream``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable

import nats.js.errors

from audit.trail import CHECKPOINT_STREAM, DEFAULT_STREAM, Checkpoint, CheckpointInvalid
from crossway.natsclient import NatsAccess, connect

__all__ = ["read_backbone", "read_stream_messages"]

log = logging.getLogger(__name__)

_COSIGNED = "crossway.checkpoint.cosigned.>"


async def read_backbone(access: NatsAccess, *, timeout: float = 5.0) -> dict[str, Checkpoint]:
    """Each gateway's largest cosigned checkpoint among the last ones per cosigned subject (as a
    reader identity: stream info and reads by subject or sequence)."""
    nc = await connect(
        access, name="crossway-audit-verify", connect_timeout=max(1, round(timeout)), allow_reconnect=False
    )
    try:
        js = nc.jetstream(timeout=timeout)
        try:
            info = await js.stream_info(CHECKPOINT_STREAM, subjects_filter=_COSIGNED)
        except nats.js.errors.NotFoundError:
            return {}
        latest: dict[str, Checkpoint] = {}
        for subject in sorted((info.state.subjects or {}).keys()):
            msg = await js.get_last_msg(CHECKPOINT_STREAM, subject)
            try:
                checkpoint = Checkpoint.from_json(msg.data or b"")
            except CheckpointInvalid as exc:
                log.warning("audit verify: the last message on %s is not a checkpoint: %s", subject, exc.message)
                continue
            held = latest.get(checkpoint.gateway)
            if held is None or checkpoint.size > held.size:
                latest[checkpoint.gateway] = checkpoint
        return latest
    finally:
        await nc.close()


async def read_stream_messages(
    access: NatsAccess, sequences: Iterable[int], *, stream: str = DEFAULT_STREAM, timeout: float = 5.0
) -> dict[int, bytes | None]:
    """The audit stream's messages at these sequences (None where the stream holds none)."""
    found: dict[int, bytes | None] = {}
    nc = await connect(
        access, name="crossway-audit-verify", connect_timeout=max(1, round(timeout)), allow_reconnect=False
    )
    try:
        js = nc.jetstream(timeout=timeout)
        for seq in sorted(set(sequences)):
            found[seq] = None
            with contextlib.suppress(nats.js.errors.NotFoundError):
                found[seq] = (await js.get_msg(stream, seq)).data
    finally:
        await nc.close()
    return found
