"""Keeps a fresh signed configuration published: in memory, and in JetStream KV when NATS is given.

A new configuration is signed when the registry's content changes (checked every ``poll_s``, so a
revocation made by another process — e.g. ``crossway registry revoke`` — reaches gateways in seconds)
and, unchanged, every ``republish_every_s`` so gateways never run into the expiry of a good copy.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import nats
from nats.js.errors import BucketNotFoundError

from crossway.core.errors import ConfigError, RegistryUnavailable
from crossway.natsclient import close_owner
from registry.authority import RegistryAuthority
from registry.source import KV_BUCKET, KV_KEY

__all__ = ["ConfigurationPublisher"]

log = logging.getLogger(__name__)


class ConfigurationPublisher:
    def __init__(
        self,
        authority: RegistryAuthority,
        nats_url: str | None = None,
        validity_s: int = 600,
        republish_every_s: float | None = None,
        *,
        poll_s: float = 1.0,
        bucket: str = KV_BUCKET,
        key: str = KV_KEY,
    ) -> None:
        # Republish well before expiry (a third of the validity by default) so one missed push is harmless.
        every = republish_every_s if republish_every_s is not None else validity_s / 3
        if not 0 < every < validity_s:
            raise ConfigError(
                f"republish interval {every}s must be positive and shorter than the validity {validity_s}s"
            )
        self._authority = authority
        self._url = nats_url
        self._validity_s = validity_s
        self._every_s = every
        self._poll_s = poll_s
        self._bucket = bucket
        self._key = key
        self._nc: Any = None
        self._kv: Any = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._digest: str | None = None
        self._published_at = 0.0
        self.latest: bytes | None = None

    async def start(self) -> None:
        if self._url is not None:
            try:
                self._nc = await nats.connect(self._url, connect_timeout=5, max_reconnect_attempts=-1)
                js = self._nc.jetstream()
                try:
                    self._kv = await js.key_value(self._bucket)
                except BucketNotFoundError:
                    self._kv = await js.create_key_value(bucket=self._bucket, history=5)
            except Exception as exc:
                await self.aclose()
                raise RegistryUnavailable(f"cannot publish to NATS at {self._url}: {type(exc).__name__}") from exc
        await self.publish_now()
        self._task = asyncio.create_task(self._run(), name="registry-publisher")

    async def publish_now(self) -> bytes:
        """Sign a new configuration (next serial), keep it as :attr:`latest` and push it to NATS."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            self._digest = self._authority.state_digest()
            signed = self._authority.build_configuration(validity_s=self._validity_s)
            self.latest = signed
            self._published_at = loop.time()
            if self._kv is not None:
                revision = await self._kv.put(self._key, signed)
                log.info("registry configuration published to %s/%s revision %s", self._bucket, self._key, revision)
            return signed

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                changed = self._authority.state_digest() != self._digest
                if changed or loop.time() - self._published_at >= self._every_s:
                    await self.publish_now()
            except Exception:  # keep trying: the last copy stays valid until it expires
                log.exception("registry configuration publication failed; retrying")

    async def aclose(self) -> None:
        await close_owner(self._task, self._nc, drain=True)
        self._task = None
        self._nc = None
        self._kv = None
