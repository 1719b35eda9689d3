"""Where a gateway gets its registry configuration from: memory, a file, or NATS JetStream KV.

All sources share one rule set (:class:`_Holder`): every candidate is verified against the anchor,
an older or equal serial never replaces a newer one (rollback protection), and the last good copy is
served until it expires — after that :meth:`current` raises RegistryStale and the gateway denies.
With a ``mark`` file (the gateway's data directory) the newest serial ever applied is kept on disk
(written and fsync'd before the configuration is used), so a restart cannot be fed an older one
either: a configuration below the mark is refused at start too (issue 11).

The NATS source needs no consumer: it reads the configuration by direct get of its one KV subject
and hears pushes through a core subscription to that subject — the only two things its NATS user
may do with the bucket (``crossway.natsauth``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import nats.errors
import nats.js.errors

from crossway.backbone import REGISTRY_BUCKET, REGISTRY_KEY, kv_stream, kv_subject
from crossway.core.clock import Clock, SystemClock
from crossway.core.errors import ConfigError, CrosswayError, RegistryStale, RegistryUntrusted
from crossway.natsclient import NatsAccess, close_owner, connect, connection_state
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

KV_BUCKET = REGISTRY_BUCKET
KV_KEY = REGISTRY_KEY

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


def read_mark(path: Path | None) -> int:
    """The high-water mark in ``path`` (0 when there is none yet). A damaged mark fails closed."""
    if path is None or not path.exists():
        return 0
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"the high-water mark {path} is unreadable ({type(exc).__name__})",
            hint="restore it from a backup; deleting it re-opens the door to rolling back",
        ) from exc


def write_mark(path: Path | None, value: int) -> None:
    """Raise the mark to ``value`` durably (fsync'd file and directory) before the value is acted on.

    A gateway's worker processes share the data directory: a lock file serializes them and the
    mark only ever goes up (a slower process never writes back an older value).
    """
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if read_mark(path) >= value:
            return
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w") as f:
            f.write(f"{value}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class _Holder:
    """The verify / no-rollback / last-good-copy rules, shared by every source."""

    def __init__(self, anchor: Anchor, clock: Clock, mark: Path | None = None) -> None:
        self.anchor = anchor
        self.clock = clock
        self._mark_path = mark
        self._mark = read_mark(mark)
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
        if config.serial < self._mark:
            raise RegistryUntrusted(
                f"{origin} offered configuration serial {config.serial}, older than serial {self._mark} "
                "applied here before (the high-water mark survives restarts)",
                hint="an old configuration was replayed; wait for the registry's next publication",
            )
        if config.serial > self._mark:
            try:
                write_mark(self._mark_path, config.serial)
            except OSError as exc:  # unmarked is unprotected: refuse rather than apply it
                raise ConfigError(
                    f"cannot record configuration serial {config.serial} in {self._mark_path}: {exc.strerror}",
                    hint="make the gateway's data directory writable",
                ) from exc
            self._mark = config.serial
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

    def __init__(
        self, signed_bytes: bytes, anchor: Anchor, clock: Clock | None = None, *, mark: Path | None = None
    ) -> None:
        self._holder = _Holder(anchor, clock or SystemClock(), mark)
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

    def __init__(
        self, path: Path, anchor: Anchor, clock: Clock | None = None, *, poll_s: float = 1.0, mark: Path | None = None
    ) -> None:
        self._path = Path(path)
        self._holder = _Holder(anchor, clock or SystemClock(), mark)
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
    """Reads the latest configuration from JetStream KV and hears every push.

    1. a core subscription to the configuration's KV subject delivers each new publication;
    2. a direct get of that subject reads the newest one at start, after each reconnect and every
       ``poll_s`` (a push missed while disconnected, or a bucket not created yet, is picked up).
    """

    def __init__(
        self,
        nats: NatsAccess,
        anchor: Anchor,
        clock: Clock | None = None,
        *,
        bucket: str = KV_BUCKET,
        key: str = KV_KEY,
        connect_timeout_s: float = 5.0,
        retry_s: float = 1.0,
        poll_s: float = 5.0,
        mark: Path | None = None,
    ) -> None:
        self._nats = nats
        self._holder = _Holder(anchor, clock or SystemClock(), mark)
        self._stream = kv_stream(bucket)
        self._subject = kv_subject(bucket, key)
        self._bucket = bucket
        self._connect_timeout_s = connect_timeout_s
        self._retry_s = retry_s
        self._poll_s = poll_s
        self._nc: Any = None
        self._sub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._first = asyncio.Event()
        self._wake = asyncio.Event()
        self._seen = b""  # the last value offered (push and poll see the same publication)

    async def start(self, *, wait_s: float = 5.0) -> None:
        """Connect and start listening; waits up to ``wait_s`` for a first configuration (no error if none)."""

        async def reconnected() -> None:
            self._wake.set()

        self._nc = await connect(
            self._nats,
            name="crossway-registry-source",
            connect_timeout=self._connect_timeout_s,
            max_reconnect_attempts=-1,
            reconnected_cb=reconnected,
        )
        self._sub = await self._nc.subscribe(self._subject, cb=self._on_push)
        self._task = asyncio.create_task(self._poll(), name="registry-nats-poll")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first.wait(), wait_s)

    async def _on_push(self, msg: Any) -> None:
        self._offer(msg.data, f"NATS {self._bucket} (push)")

    def _offer(self, data: bytes | None, origin: str) -> None:
        if data and data != self._seen:  # a KV delete/purge marker has no value
            self._seen = data
            self._holder.offer_quietly(data, origin)
        self._first.set()

    async def _read_latest(self) -> None:
        js = self._nc.jetstream(timeout=self._connect_timeout_s)
        try:
            msg = await js.get_last_msg(self._stream, self._subject, direct=True)
        except nats.js.errors.NotFoundError:
            self._first.set()  # nothing published yet: callers should not keep waiting
            return
        self._offer(msg.data, f"NATS {self._bucket}#{msg.seq}")

    async def _poll(self) -> None:
        while True:
            try:
                await self._read_latest()
                delay = self._poll_s
            except (nats.errors.Error, TimeoutError, OSError) as exc:
                # Connection trouble (nats-py reconnects) or no stream yet: try again soon.
                log.warning("registry read from %s failed: %s", self._bucket, type(exc).__name__)
                delay = self._retry_s
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

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
