"""Token keys from an identity provider's JWK Set (RFC 7517), fetched and refreshed in the background.

Identity providers rotate their signing keys by publishing a new one in their JWKS, signing with
it a while later, and dropping the old one after. A :class:`JwksKeySource` follows that without a
restart, and without verification ever waiting on the network:

1. ``start()`` fetches the set once (a failure is logged, not fatal: the source is then *not
   ready* and every token is refused — fail closed), then a background task fetches it again
   every ``refresh_s`` seconds;
2. :meth:`keys` is a dict lookup of the last good set, for the synchronous verifier
   (``crossway.security.tokens.JwtVerifier``);
3. a token naming a ``kid`` the set does not hold calls :meth:`request_refresh`: a fetch as soon
   as ``min_interval_s`` has passed since the last one (a stream of made-up kids cannot make the
   gateway hammer the provider), while that token is refused with a hint to retry;
4. a fetch that fails or returns something unusable keeps the last good set (an outage of the
   provider does not lock every caller out); a good fetch replaces it whole, so a key the provider
   dropped stops verifying from then on, and :attr:`generation` changes (caches of verified tokens
   start over).

Only asymmetric public keys are taken (EC, OKP/Ed25519, RSA); ``oct`` (shared secret) keys and keys
marked ``"use": "enc"`` are ignored. HTTPS is required, except on a loopback address; ``ca_file``
names the CA to trust for it (default: the system's).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from crossway.core.errors import ConfigError
from crossway.security.tokens import PublicKey, TokenKeySource, jwk_thumbprint

__all__ = ["JwksKeySource", "StaticKeySource", "TokenKeySource", "parse_jwks"]

log = logging.getLogger(__name__)


class StaticKeySource:
    """The in-memory twin: keys set by the test, refresh requests counted."""

    def __init__(self, keys: Mapping[str, PublicKey] | None = None) -> None:
        self._keys: Mapping[str, PublicKey] = MappingProxyType(dict(keys or {}))
        self._ready = keys is not None
        self.generation = 0
        self.refresh_requests = 0

    @property
    def ready(self) -> bool:
        return self._ready

    def keys(self) -> Mapping[str, PublicKey]:
        return self._keys

    def set_keys(self, keys: Mapping[str, PublicKey]) -> None:
        self._keys, self._ready = MappingProxyType(dict(keys)), True
        self.generation += 1

    def request_refresh(self) -> None:
        self.refresh_requests += 1


def _public(key: Any) -> PublicKey | None:
    # A JWKS is public, but a careless provider may publish a private JWK: use its public half.
    if isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
        key = key.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
        return key
    return None


def parse_jwks(document: Any) -> dict[str, PublicKey]:
    """``kid`` → public key of the usable signing keys of a JWK Set document; ValueError when none.

    A key without ``kid`` gets its RFC 7638 thumbprint, the ``kid`` a token would name it by.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK Set (no 'keys' list)")
    keys: dict[str, PublicKey] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("kty") == "oct" or entry.get("use") == "enc":
            continue
        try:
            jwk = jwt.PyJWK(entry)
        except jwt.PyJWTError:
            continue  # an algorithm or curve pyjwt does not support: skipped, like PyJWKSet does
        key = _public(jwk.key)
        if key is not None:
            keys[jwk.key_id or jwk_thumbprint(key)] = key
    if not keys:
        raise ValueError("the JWK Set holds no usable signing key (EC, Ed25519 or RSA)")
    return keys


def _checked_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    loopback = False
    with contextlib.suppress(ValueError):
        loopback = parts.hostname == "localhost" or ipaddress.ip_address(parts.hostname or "").is_loopback
    if parts.scheme == "http" and loopback:
        return url
    raise ConfigError(
        f"JWKS URL {url!r} must be https:// (plain http only on a loopback address)",
        hint="whoever can change the key set can sign tokens: fetch it over TLS",
    )


class JwksKeySource:
    """A JWK Set at ``url``, fetched at start, every ``refresh_s`` and on an unknown ``kid``."""

    def __init__(
        self,
        url: str,
        *,
        ca_file: Path | None = None,
        refresh_s: float = 300.0,
        min_interval_s: float = 5.0,
        timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = _checked_url(url)
        self._ca_file = ca_file
        self._refresh_s = refresh_s
        self._min_interval_s = min(min_interval_s, refresh_s)
        self._timeout_s = timeout_s
        self._transport = transport  # httpx.MockTransport in unit tests
        self._monotonic = monotonic
        self._keys: Mapping[str, PublicKey] = MappingProxyType({})
        self._ready = False
        self._generation = 0
        self._last_attempt = float("-inf")
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return self._url

    @property
    def started(self) -> bool:
        return self._client is not None

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def generation(self) -> int:
        return self._generation

    def keys(self) -> Mapping[str, PublicKey]:
        return self._keys

    def request_refresh(self) -> None:
        if self._loop is None or self._wake.is_set():
            return
        # Verification may run on another thread than the loop that owns the refresh task; the
        # task itself keeps to one fetch per min_interval_s, however many tokens ask.
        self._loop.call_soon_threadsafe(self._wake.set)

    async def start(self) -> None:
        verify: ssl.SSLContext | bool = True
        if self._ca_file is not None:
            try:
                verify = ssl.create_default_context(cafile=str(self._ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"cannot read the JWKS CA file {self._ca_file}: {exc}") from exc
        self._client = httpx.AsyncClient(verify=verify, timeout=self._timeout_s, transport=self._transport)
        self._loop = asyncio.get_running_loop()
        await self.refresh()
        self._task = asyncio.create_task(self._run(), name=f"jwks {self._url}")

    async def refresh(self) -> bool:
        """Fetch the set now; True when a usable set was installed."""
        assert self._client is not None, "start() first"
        self._last_attempt = self._monotonic()
        try:
            response = await self._client.get(self._url, headers={"accept": "application/json"})
            response.raise_for_status()
            keys = parse_jwks(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            state = "keeping the last good key set" if self._ready else "refusing every token until it answers"
            log.warning("JWKS %s unusable (%s: %s); %s", self._url, type(exc).__name__, exc, state)
            return False
        if not self._ready or dict(keys) != dict(self._keys):
            log.info("JWKS %s: %d key(s): %s", self._url, len(keys), ", ".join(sorted(keys)))
            self._keys, self._ready = MappingProxyType(keys), True
            self._generation += 1
        return True

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._refresh_s)
            self._wake.clear()
            # The rate limit holds for on-demand fetches right after a scheduled one as well.
            wait = self._min_interval_s - (self._monotonic() - self._last_attempt)
            if wait > 0:
                await asyncio.sleep(wait)
            await self.refresh()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
