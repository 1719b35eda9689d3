"""Where a gateway gets its registry configuration from: memory, a file, or NATS JetStream KV.

All sources share one rule set (:class:`_Holder`): every candidate is verified against the anchor,
an older or equal serial never replaces a newer one (rollback protection), and the last good copy is
served until it expires — after that :meth:`current` raises RegistryStale and the gateway denies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import nats
from nats.js.errors import BucketNotFoundError, KeyNotFoundError

from crossway.core.clock import Clock, SystemClock
from crossway.core.errors import CrosswayError, RegistryStale, RegistryUntrusted
from crossway.natsclient import close_owner, connection_state
from registry.anchor import Anchor
from registry.configuration import VerifiedConfiguration, verify_configuration

__all__ = [
    "KV_BUCKET",
    "KV_KEY",
    "ConfigurationListener",
    "ConfigurationSource",
    "FileConfigurationSource",
    "NatsConfigurationSource",
    "StaticConfigurationSource",
]

log = logging.getLogger(__name__)

KV_BUCKET = "crossway-registry"
KV_KEY = "configuration"

ConfigurationListener = Callable[[VerifiedConfiguration], None]


class ConfigurationSource(Protocol):
    async def start(self) -> None: ...

    def current(self) -> VerifiedConfiguration:
        """The newest verified, unexpired configuration; RegistryStale when there is none."""
        ...

    def subscribe(self, callback: ConfigurationListener) -> Callable[[], None]:
        """Call ``callback`` with every newly accepted configuration; returns an unsubscribe function."""
        ...

    async def aclose(self) -> None: ...


class _Holder:
    """The verify / no-rollback / last-good-copy rules, shared by every source."""

    def __init__(self, anchor: Anchor, clock: Clock) -> None:
        self.anchor = anchor
        self.clock = clock
        self._config: VerifiedConfiguration | None = None
        self._listeners: list[ConfigurationListener] = []

    def offer(self, signed: bytes, origin: str) -> VerifiedConfiguration:
        """Verify and install ``signed``; raises when it is not acceptable."""
        config = verify_configuration(signed, self.anchor, self.clock.now_ms())
        previous = self._config
        if previous is not None and config.serial <= previous.serial:
            raise RegistryUntrusted(
                f"{origin} offered configuration serial {config.serial}, not newer than {previous.serial}",
                hint="an old configuration was replayed or the registry's serial went back; keeping the newer one",
            )
        self._config = config
        log.info("registry configuration serial %s accepted from %s", config.serial, origin)
        for listener in list(self._listeners):
            try:
                listener(config)
            except Exception:  # a broken listener must not stop the others from hearing about it
                log.exception("registry configuration listener failed")
        return config

    def offer_quietly(self, signed: bytes, origin: str) -> None:
        """Like :meth:`offer`, but log instead of raise: for pushes nobody waits on."""
        try:
            self.offer(signed, origin)
        except CrosswayError as exc:
            log.warning("ignoring registry configuration from %s: %s", origin, exc.details())

    def current(self) -> VerifiedConfiguration:
        if self._config is None:
            raise RegistryStale("no registry configuration has been received yet")
        self._config.check_fresh(self.clock.now_ms())
        return self._config

    def subscribe(self, callback: ConfigurationListener) -> Callable[[], None]:
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None


class StaticConfigurationSource:
    """The in-memory twin: a configuration handed over as bytes (tests, demos, air-gapped installs)."""

    def __init__(self, signed_bytes: bytes, anchor: Anchor, clock: Clock | None = None) -> None:
        self._holder = _Holder(anchor, clock or SystemClock())
        self._holder.offer(signed_bytes, "static source")

    async def start(self) -> None:
        return None

    def current(self) -> VerifiedConfiguration:
        return self._holder.current()

    def subscribe(self, callback: ConfigurationListener) -> Callable[[], None]:
        return self._holder.subscribe(callback)

    def replace(self, signed_bytes: bytes) -> VerifiedConfiguration:
        """Install a newer configuration; raises like verification does (tests want to see why)."""
        return self._holder.offer(signed_bytes, "static source")

    async def aclose(self) -> None:
        return None


class FileConfigurationSource:
    """A configuration file written by ``crossway registry publish -o FILE``, re-read when it changes."""

    def __init__(self, path: Path, anchor: Anchor, clock: Clock | None = None, *, poll_s: float = 1.0) -> None:
        self._path = Path(path)
        self._holder = _Holder(anchor, clock or SystemClock())
        self._poll_s = poll_s
        self._seen: tuple[int, int] | None = None
        self._task: asyncio.Task[None] | None = None

    def _check(self) -> None:
        try:
            stat = self._path.stat()
        except OSError as exc:
            log.warning("registry configuration file %s unreadable: %s", self._path, exc.strerror)
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._seen:
            return
        self._seen = stamp
        with contextlib.suppress(OSError):
            self._holder.offer_quietly(self._path.read_bytes(), f"file {self._path}")

    async def start(self) -> None:
        self._check()
        self._task = asyncio.create_task(self._poll(), name=f"registry-file-{self._path.name}")

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            self._check()

    def current(self) -> VerifiedConfiguration:
        return self._holder.current()

    def subscribe(self, callback: ConfigurationListener) -> Callable[[], None]:
        return self._holder.subscribe(callback)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class NatsConfigurationSource:
    """Reads the latest configuration from JetStream KV and watches for pushes.

    nats-py reconnects by itself; the ordered-consumer watcher resumes after a reconnect. When the
    bucket does not exist yet (registry not published), the watch is retried in the background.
    """

    def __init__(
        self,
        nats_url: str,
        anchor: Anchor,
        clock: Clock | None = None,
        *,
        bucket: str = KV_BUCKET,
        key: str = KV_KEY,
        connect_timeout_s: float = 5.0,
        retry_s: float = 1.0,
    ) -> None:
        self._url = nats_url
        self._holder = _Holder(anchor, clock or SystemClock())
        self._bucket = bucket
        self._key = key
        self._connect_timeout_s = connect_timeout_s
        self._retry_s = retry_s
        self._nc: Any = None
        self._task: asyncio.Task[None] | None = None
        self._first = asyncio.Event()

    async def start(self, *, wait_s: float = 5.0) -> None:
        """Connect and start watching; waits up to ``wait_s`` for a first configuration (no error if none)."""
        self._nc = await nats.connect(
            self._url,
            connect_timeout=self._connect_timeout_s,
            max_reconnect_attempts=-1,
            name="crossway-registry-source",
        )
        self._task = asyncio.create_task(self._watch(), name="registry-nats-watch")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first.wait(), wait_s)

    async def _watch(self) -> None:
        js = self._nc.jetstream()
        while True:
            try:
                kv = await js.key_value(self._bucket)
                watcher = await kv.watch(self._key)
            except (BucketNotFoundError, KeyNotFoundError):
                self._first.set()  # nothing published yet: callers should not keep waiting
                await asyncio.sleep(self._retry_s)
                continue
            except Exception as exc:  # connection trouble: nats-py reconnects; we retry the watch
                log.warning("registry watch on %s failed: %s", self._bucket, type(exc).__name__)
                await asyncio.sleep(self._retry_s)
                continue
            try:
                async for entry in watcher:
                    if entry is None:  # end of the initial values
                        self._first.set()
                        continue
                    if entry.value:
                        self._holder.offer_quietly(entry.value, f"NATS {self._bucket}/{self._key}#{entry.revision}")
                        self._first.set()
            finally:
                with contextlib.suppress(Exception):
                    await watcher.stop()

    def current(self) -> VerifiedConfiguration:
        return self._holder.current()

    def subscribe(self, callback: ConfigurationListener) -> Callable[[], None]:
        return self._holder.subscribe(callback)

    @property
    def nats_state(self) -> tuple[str, str]:
        """(state, server) of the watch's NATS connection, for the gateway's status."""
        return connection_state(self._nc)

    async def aclose(self) -> None:
        await close_owner(self._task, self._nc)
        self._task = None
        self._nc = None
