"""Connecting to NATS as someone, without hanging: identity, TLS 1.3, a bounded first connect.

Every connection is TLS 1.3 with a client certificate the server maps to a user (``verify_and_map``,
docs/backbone.md); :class:`NatsAccess` carries what a component needs for that — the server URLs
(one or a cluster's), the CA of the NATS servers, its own certificate and key — and the inbox
prefix of its identity, which is the only place replies to it may arrive (a shared ``_INBOX.>``
would let identities read each other's acks and consumer deliveries; notes/nats-security.md §2).

nats-py's own retry of a *first* connect (``max_reconnect_attempts=-1``) can swallow task
cancellation (an ``asyncio.wait_for`` races inside its connect path), so an owner's ``aclose()``
could hang while NATS was down. Here the first connect is ours: probe the port with a plain TCP
read of the server's INFO line, only then let nats-py connect once, and when connected switch
its reconnecting to "forever" (the options dict is what it consults on each disconnect).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import nats.errors
from cryptography import x509
from nats.aio.client import Client as NATS

from crossway.backbone import NatsIdentity, identity_of_certificate
from crossway.core.errors import ConfigError

__all__ = [
    "NatsAccess",
    "access_from_arguments",
    "add_nats_arguments",
    "close_owner",
    "connect",
    "connect_when_up",
    "connection_state",
    "nats_answers",
    "try_anonymous",
    "wait_for_nats",
]

log = logging.getLogger(__name__)


def _not_the_ssl_eof_warning(record: logging.LogRecord) -> bool:
    # asyncio warns "returning true from eof_received() has no effect when using ssl" on every TLS
    # connection nats-py closes (notes/nats-security.md §8): noise, since every connection is TLS.
    return "eof_received()" not in record.getMessage()


logging.getLogger("asyncio").addFilter(_not_the_ssl_eof_warning)

ErrorCallback = Callable[[Exception], Awaitable[None]]
EventCallback = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class NatsAccess:
    """How one identity reaches the backbone: servers, the servers' CA, its certificate and key."""

    servers: tuple[str, ...]
    ca_file: Path
    cert_file: Path
    key_file: Path
    identity: NatsIdentity
    key_passphrase: bytes | None = field(default=None, repr=False)

    @classmethod
    def load(
        cls,
        servers: Sequence[str] | str,
        *,
        ca_file: Path,
        cert_file: Path,
        key_file: Path,
        key_passphrase: bytes | None = None,
    ) -> NatsAccess:
        """Read the identity out of the certificate (its one crossway-nats:// URI SAN)."""
        urls = tuple(u.strip() for u in (servers.split(",") if isinstance(servers, str) else servers) if u.strip())
        if not urls:
            raise ConfigError("no NATS server URL given", hint="e.g. tls://nats1.example:4222")
        try:
            cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot read the NATS certificate {cert_file} ({type(exc).__name__})",
                hint="check the [nats] certificate path: a PEM certificate issued by the registry",
            ) from exc
        identity, _serial = identity_of_certificate(cert)
        return cls(urls, Path(ca_file), Path(cert_file), Path(key_file), identity, key_passphrase)

    @property
    def url(self) -> str:
        """The servers as one comma-separated string (for display and the environment)."""
        return ",".join(self.servers)

    @property
    def inbox_prefix(self) -> str:
        return self.identity.inbox_prefix

    def with_servers(self, servers: Sequence[str]) -> NatsAccess:
        return replace(self, servers=tuple(servers))

    def ssl_context(self) -> ssl.SSLContext:
        """TLS 1.3 only, the NATS CA as the only root, this identity's certificate as the client's."""
        try:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_file))
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
            ctx.load_cert_chain(str(self.cert_file), str(self.key_file), password=self.key_passphrase)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"cannot set up TLS to NATS as {self.identity} ({type(exc).__name__}: {exc})",
                hint="check the [nats] ca, certificate and key files (and the key's passphrase)",
            ) from exc
        return ctx

    def options(self) -> dict[str, Any]:
        """The keyword arguments of ``nats.connect`` that make a connection this identity's."""
        return {"servers": list(self.servers), "tls": self.ssl_context(), "inbox_prefix": self.inbox_prefix}


def add_nats_arguments(parser: argparse.ArgumentParser, *, required: bool = False, what: str = "NATS") -> None:
    """``--nats URLS`` and the identity to connect with (every command that talks to NATS)."""
    parser.add_argument("--nats", required=required, default="", help=f"{what} server URL(s), comma-separated")
    parser.add_argument("--nats-ca", default="", help="CA of the NATS servers (PEM)")
    parser.add_argument("--nats-cert", default="", help="this identity's NATS certificate (PEM, from the registry)")
    parser.add_argument("--nats-key", default="", help="its private key (PEM; it never leaves this machine)")


def access_from_arguments(args: argparse.Namespace) -> NatsAccess | None:
    """The access ``add_nats_arguments`` describes; None without ``--nats``."""
    if not args.nats:
        return None
    if not (args.nats_ca and args.nats_cert and args.nats_key):
        raise ConfigError(
            "--nats needs --nats-ca, --nats-cert and --nats-key: nobody connects to NATS anonymously",
            hint="get a certificate with `crossway nats request` and `crossway registry nats issue`",
        )
    return NatsAccess.load(
        args.nats, ca_file=Path(args.nats_ca), cert_file=Path(args.nats_cert), key_file=Path(args.nats_key)
    )


async def _log_error(exc: Exception) -> None:
    # error_cb is the only place nats-py reports permission violations (notes §8): keep them visible.
    log.warning("NATS: %s", exc)


async def connect(access: NatsAccess, *, name: str, error_cb: ErrorCallback | None = None, **options: Any) -> NATS:
    """``nats.connect`` as ``access``'s identity; ``options`` are nats-py's (timeouts, reconnects)."""
    nc = NATS()
    await nc.connect(**access.options(), name=name, error_cb=error_cb or _log_error, **options)
    return nc


async def nats_answers(url: str, timeout: float, on_error: ErrorCallback) -> bool:
    """Does a NATS server answer at any of the URLs' addresses with its INFO line within ``timeout``?"""
    for one in url.split(","):
        if await _answers(one.strip(), timeout, on_error):
            return True
    return False


async def _answers(url: str, timeout: float, on_error: ErrorCallback) -> bool:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 4222
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                line = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError) as exc:
        await on_error(exc)
        return False
    return line.startswith(b"INFO")


async def connect_when_up(
    access: NatsAccess,
    *,
    name: str,
    connect_timeout: float,
    retry_interval: float,
    on_error: ErrorCallback,
    on_disconnected: EventCallback,
    on_reconnected: EventCallback,
) -> tuple[NATS, int]:
    """Retry every ``retry_interval`` until NATS answers and accepts us; returns the client (set
    to reconnect forever from now on) and the number of attempts. Cancellable at any await."""
    attempt = 0
    while True:
        attempt += 1
        if await nats_answers(access.url, connect_timeout, on_error):
            nc = NATS()
            try:
                await nc.connect(
                    **access.options(),
                    name=name,
                    connect_timeout=max(1, round(connect_timeout)),
                    reconnect_time_wait=max(0.1, retry_interval),  # type: ignore[arg-type]  # float works
                    max_reconnect_attempts=1,
                    allow_reconnect=False,
                    error_cb=on_error,
                    disconnected_cb=on_disconnected,
                    reconnected_cb=on_reconnected,
                )
            except (OSError, TimeoutError, ssl.SSLError, nats.errors.Error) as exc:
                # A refused identity (revoked, unknown) lands here too, named by the server's text.
                log.warning("%s: NATS connect as %s failed: %r", name, access.identity, exc)
            else:
                nc.options["allow_reconnect"] = True
                nc.options["max_reconnect_attempts"] = -1
                return nc, attempt
        await asyncio.sleep(retry_interval)


async def try_anonymous(urls: str, *, timeout: float = 3.0) -> list[str]:
    """Knock as nobody on every node, the way an outsider would; returns how the first refused.

    1. plain TCP: read INFO, send CONNECT and PING without TLS (a server admitting it answers PONG);
    2. TLS 1.3 without a client certificate, not even checking the server's certificate.
    Raises ``RuntimeError`` when any attempt on any node gets in.
    """
    nodes = [u.strip() for u in urls.split(",") if u.strip()]
    refusals = [await _knock(url, timeout) for url in nodes]
    first = refusals[0]
    if len(nodes) > 1:
        first = [*first, f"the same on all {len(nodes)} nodes"]
    return first


async def _knock(url: str, timeout: float) -> list[str]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 4222
    refusals: list[str] = []
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            info = (await reader.readline()).decode(errors="replace")
            writer.write(b'CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n')
            await writer.drain()
            answer = (await reader.readline()).decode(errors="replace").strip()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    if answer.startswith("PONG"):
        raise RuntimeError(f"NATS at {host}:{port} answered a plain, anonymous client")
    tls_required = '"tls_required":true' in info.replace(" ", "")
    refusals.append(f"plain: {answer or 'closed by the server'}{' (TLS required)' if tls_required else ''}")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # an outsider does not care whom it talks to
    nc = NATS()

    async def quiet(exc: Exception) -> None:
        return None

    try:
        await nc.connect(
            servers=[url], tls=ctx, connect_timeout=max(1, round(timeout)), allow_reconnect=False, error_cb=quiet
        )
    except (OSError, nats.errors.Error) as exc:
        # The server ends the handshake (certificate required); nats-py reports a reset or an SSL error.
        refusals.append(f"TLS without a certificate: {type(exc).__name__} {exc}".strip())
    else:
        await nc.close()
        raise RuntimeError(f"NATS at {host}:{port} admitted a TLS client without a certificate")
    return refusals


async def close_owner(task: asyncio.Task[Any] | None, nc: NATS | None, *, drain: bool = False) -> None:
    """How every NATS-backed owner stops: cancel its background task and wait for it, then
    close (or drain, to flush what is in flight) its connection; errors of a dying connection
    are not the caller's concern."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if nc is not None:
        with contextlib.suppress(Exception):
            await (nc.drain() if drain else nc.close())


# -- waiting for NATS before a component starts (issue 13) ----------------------------------------


async def wait_for_nats(
    url: str,
    *,
    who: str,
    probe_timeout: float = 2.0,
    first_delay: float = 0.5,
    max_delay: float = 10.0,
) -> int:
    """Return once a NATS server answers at ``url``; the number of attempts it took.

    Until then: one log line per failed attempt (what was tried, why it failed, when the next
    try is — no traceback), exponential backoff with jitter (so a fleet of components
    restarted together does not retry in step), and every wait cancellable: a component
    told to stop while NATS is away stops at once. Only plain asyncio is awaited here, never
    nats-py's own first-connect loop (see the module docstring).
    """
    attempt = 0
    delay = first_delay
    failure: list[Exception] = []

    async def remember(exc: Exception) -> None:
        failure.append(exc)

    while True:
        attempt += 1
        failure.clear()
        if await nats_answers(url, probe_timeout, remember):
            if attempt > 1:
                log.info("%s: NATS at %s answers after %d attempt(s)", who, url, attempt)
            return attempt
        pause = random.uniform(first_delay, delay)  # noqa: S311 - jitter, not a secret
        if not failure:
            reason = "something answers, but not with a NATS INFO line"
        elif str(failure[0]):
            reason = f"{type(failure[0]).__name__}: {failure[0]}"
        else:
            reason = f"no answer within {probe_timeout:g} s"
        log.warning("%s: NATS at %s does not answer (%s); attempt %d, next in %.1f s", who, url, reason, attempt, pause)
        await asyncio.sleep(pause)
        delay = min(max_delay, delay * 2)


def connection_state(nc: NATS | None) -> tuple[str, str]:
    """(state, server) of a client for an operator: connected, reconnecting, connecting, closed or
    "not connected"; the server as host:port — never the URL's credentials."""
    if nc is None:
        return "not connected", ""
    url = getattr(nc, "connected_url", None)
    server = f"{url.hostname}:{url.port}" if url is not None and url.hostname else ""
    for state, flag in (
        ("connected", nc.is_connected),
        ("reconnecting", nc.is_reconnecting),
        ("connecting", nc.is_connecting),
        ("closed", nc.is_closed),
    ):
        if flag:
            return state, server
    return "not connected", server
