"""Keeps a fresh signed configuration published: in memory, and in JetStream KV when NATS is given.

A new configuration is signed when the registry's content changes (checked every ``poll_s``, so a
revocation made by another process — e.g. ``crossway registry revoke`` — reaches gateways in seconds)
and, unchanged, every ``republish_every_s`` so gateways never run into the expiry of a good copy.

The registry owns its KV bucket: every ``poll_s`` it checks that the bucket is there, and when it
is not (deleted with the admin credential, lost with a data directory) it creates it again — its
NATS user may create that one bucket and nothing else, never update, purge or delete it — logs
that loudly, and publishes at once (issue 11: a deleted bucket used to leave the federation to
expire into ``registry.stale``). It also keeps what each member owns on the backbone
(``crossway.natsstreams.member_streams``: its delivery streams and state bucket, and with
``replay_window_s`` its shared replay bucket), created when a member appears or one is gone.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import nats.errors
import nats.js.errors

from crossway.backbone import kv_stream, kv_subject
from crossway.core.errors import ConfigError, RegistryUnavailable
from crossway.natsclient import NatsAccess, close_owner, connect
from crossway.natsstreams import REGISTRY_HISTORY, bucket_config, ensure_stream, member_streams
from registry.authority import RegistryAuthority
from registry.source import KV_BUCKET, KV_KEY

__all__ = ["ConfigurationPublisher"]

log = logging.getLogger(__name__)


class ConfigurationPublisher:
    def __init__(
        self,
        authority: RegistryAuthority,
        nats: NatsAccess | None = None,
        validity_s: int = 600,
        republish_every_s: float | None = None,
        *,
        poll_s: float = 1.0,
        bucket: str = KV_BUCKET,
        key: str = KV_KEY,
        replicas: int = 1,
        replay_window_s: float = 0.0,
    ) -> None:
        # Republish well before expiry (a third of the validity by default) so one missed push is harmless.
        every = republish_every_s if republish_every_s is not None else validity_s / 3
        if not 0 < every < validity_s:
            raise ConfigError(
                f"republish interval {every}s must be positive and shorter than the validity {validity_s}s"
            )
        self._authority = authority
        self._nats = nats
        self._validity_s = validity_s
        self._every_s = every
        self._poll_s = poll_s
        self._bucket = bucket
        self._subject = kv_subject(bucket, key)
        self._replicas = replicas
        self._replay_window_s = replay_window_s
        self._nc: Any = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._digest: str | None = None
        self._published_at = 0.0
        self.latest: bytes | None = None
        self.recreated = 0  # times the bucket was found missing and created again

    async def start(self) -> None:
        if self._nats is not None:
            try:
                self._nc = await connect(
                    self._nats, name="crossway-registry-publisher", connect_timeout=5, max_reconnect_attempts=-1
                )
                await self._ensure_bucket()
                await self._ensure_member_streams()
            except Exception as exc:
                await self.aclose()
                raise RegistryUnavailable(
                    f"cannot publish to NATS at {self._nats.url}: {type(exc).__name__}: {exc}"
                ) from exc
        await self.publish_now()
        self._task = asyncio.create_task(self._run(), name="registry-publisher")

    async def _ensure_bucket(self) -> bool:
        """Create the bucket when it is missing (logged); True when it had to be created."""
        js = self._nc.jetstream(timeout=5.0)
        wanted = bucket_config(self._bucket, self._replicas, history=REGISTRY_HISTORY)
        try:
            await js.stream_info(kv_stream(self._bucket))
            return False
        except nats.js.errors.NotFoundError:
            pass
        await ensure_stream(js, wanted)
        self.recreated += 1
        log.error(
            "registry bucket %s was missing (deleted?): created it again; republishing the configuration",
            self._bucket,
        )
        return True

    async def _ensure_member_streams(self) -> None:
        js = self._nc.jetstream(timeout=5.0)
        for member in self._authority.store.members():
            for wanted in member_streams(str(member.id), self._replicas, replay_window_s=self._replay_window_s):
                if await ensure_stream(js, wanted):
                    log.info("%s of %s created", wanted.name, member.id)

    async def publish_now(self) -> bytes:
        """Sign a new configuration (next serial), keep it as :attr:`latest` and push it to NATS."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            self._digest = self._authority.state_digest()
            signed = self._authority.build_configuration(validity_s=self._validity_s)
            self.latest = signed
            self._published_at = loop.time()
            if self._nc is not None:
                ack = await self._nc.jetstream(timeout=5.0).publish(self._subject, signed)
                log.info("registry configuration published to %s revision %s", self._bucket, ack.seq)
            return signed

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                recreated = self._nc is not None and await self._ensure_bucket()
                changed = self._authority.state_digest() != self._digest
                if changed and self._nc is not None:
                    await self._ensure_member_streams()  # a new member needs its streams and buckets
                if recreated or changed or loop.time() - self._published_at >= self._every_s:
                    await self.publish_now()
            except (nats.errors.Error, TimeoutError, OSError) as exc:
                log.warning("registry configuration publication failed (%s: %s); retrying", type(exc).__name__, exc)
            except Exception:  # keep trying: the last copy stays valid until it expires
                log.exception("registry configuration publication failed; retrying")

    async def aclose(self) -> None:
        await close_owner(self._task, self._nc, drain=True)
        self._task = None
        self._nc = None
