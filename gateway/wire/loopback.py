"""The in-process twin of the link between gateways: both pipelines in one process, no socket.

:class:`LoopbackLink` hands the client pipeline's envelopes straight to provider endpoints
(the real :class:`~gateway.provider.ProviderPipeline`), registered by peer address. The provider
sees the client gateway's TLS certificate in a stand-in auth context, exactly as gRPC would
present it, so its step 1 (the peer's identity) runs unchanged. What gRPC does at the hop is
mirrored, not skipped: a refusal before signing comes back as the provider's error with hop
``provider gateway``; an address nobody serves is ``peer.unavailable``; the deadline is enforced;
a stream the client cancels cancels the provider's side (which audits it as cancelled).

For unit tests and ``bench.pipeline``; never used by a running gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping

from crossway.core.errors import (
    CrosswayError,
    DeadlineExceeded,
    Hop,
    InternalError,
    ProviderUnreachable,
    StreamBroken,
    error_class_for_code,
)
from gateway.wire.frames import Envelope
from gateway.wire.link import AuthContext, PeerEndpoint, PeerTarget

__all__ = ["LoopbackLink"]

log = logging.getLogger(__name__)


def _across_the_hop(exc: CrosswayError) -> CrosswayError:
    """The provider's refusal as the client receives it: a fresh error, rebuilt from its code."""
    return error_class_for_code(exc.code)(exc.message, hint=exc.hint or None, hop=Hop.PROVIDER)


def _unexpected(exc: BaseException) -> CrosswayError:
    log.error("internal error in the loopback provider: %s", type(exc).__name__, exc_info=exc)
    return InternalError(f"unexpected {type(exc).__name__} in the provider gateway", hop=Hop.PROVIDER)


class _End:
    """The provider's side of a stream ended (with this error, or none)."""

    __slots__ = ("error",)

    def __init__(self, error: CrosswayError | None) -> None:
        self.error = error


class _LoopbackStream:
    """The provider's stream runs as its own task, as it would in the provider gateway."""

    def __init__(self, endpoint: PeerEndpoint, auth: AuthContext, target: PeerTarget, timeout: float) -> None:
        self._target = target
        self._requests: asyncio.Queue[Envelope | None] = asyncio.Queue()
        self._responses: asyncio.Queue[Envelope | _End] = asyncio.Queue()
        self._closed_for_writing = False
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._serve(endpoint, auth), name="crossway-loopback-stream")
        self._expiry = loop.call_later(timeout, self._expire)

    async def _request_frames(self) -> AsyncIterator[Envelope]:
        while (envelope := await self._requests.get()) is not None:
            yield envelope

    async def _serve(self, endpoint: PeerEndpoint, auth: AuthContext) -> None:
        end = _End(None)
        try:
            async for envelope in endpoint.stream(self._request_frames(), auth):
                self._responses.put_nowait(envelope)
        except CrosswayError as exc:
            end = _End(_across_the_hop(exc))
        except Exception as exc:
            end = _End(_unexpected(exc))
        finally:
            self._expiry.cancel()
            self._responses.put_nowait(end)

    def _expire(self) -> None:
        if not self._task.done():
            self._task.cancel()
            where = f"{self._target.provider}'s gateway at {self._target.address}"
            self._responses.put_nowait(_End(DeadlineExceeded(f"no answer from {where} within the deadline")))

    async def write(self, envelope: Envelope) -> None:
        if self._task.done() or self._closed_for_writing:
            raise StreamBroken(f"{self._target.provider}'s gateway ended the stream")
        self._requests.put_nowait(envelope)

    async def done_writing(self) -> None:
        if not self._closed_for_writing:
            self._closed_for_writing = True
            self._requests.put_nowait(None)

    async def responses(self) -> AsyncIterator[Envelope]:
        while True:
            item = await self._responses.get()
            if isinstance(item, _End):
                # Seen once: a second reader (or read) ends at once.
                self._responses.put_nowait(_End(None))
                if item.error is not None:
                    raise item.error
                return
            yield item

    def cancel(self) -> None:
        self._expiry.cancel()
        if not self._task.done():
            self._task.cancel()


class LoopbackLink:
    """A :class:`~gateway.wire.link.PeerLink` whose peers are provider endpoints in this process.

    ``client_certificate_pem`` is the client gateway's TLS certificate: what the provider's
    step 1 checks against the registry, as it would check the certificate of a TLS connection.
    """

    def __init__(self, client_certificate_pem: bytes, endpoints: Mapping[str, PeerEndpoint] | None = None) -> None:
        self._auth: AuthContext = {
            "transport_security_type": [b"ssl"],
            "ssl_tls_version": [b"TLSv1.3"],
            "x509_pem_cert": [client_certificate_pem],
        }
        self._endpoints: dict[str, PeerEndpoint] = dict(endpoints or {})
        self._streams: set[_LoopbackStream] = set()

    def serve(self, address: str, endpoint: PeerEndpoint) -> None:
        """``endpoint`` answers exchanges sent to ``address`` (a provider gateway's peer port)."""
        self._endpoints[address] = endpoint

    def stop_serving(self, address: str) -> None:
        """``address`` goes down: later exchanges to it are ``peer.unavailable``."""
        self._endpoints.pop(address, None)

    def _endpoint(self, target: PeerTarget) -> PeerEndpoint:
        endpoint = self._endpoints.get(target.address)
        if endpoint is None:
            raise ProviderUnreachable(f"{target.provider}'s gateway at {target.address} is unreachable")
        return endpoint

    async def exchange(self, target: PeerTarget, envelope: Envelope, timeout: float) -> Envelope:
        endpoint = self._endpoint(target)
        try:
            return await asyncio.wait_for(endpoint.call(envelope, self._auth), timeout)
        except TimeoutError:
            where = f"{target.provider}'s gateway at {target.address}"
            raise DeadlineExceeded(f"no answer from {where} within the deadline") from None
        except CrosswayError as exc:
            raise _across_the_hop(exc) from None
        except Exception as exc:
            raise _unexpected(exc) from None

    def open_stream(self, target: PeerTarget, timeout: float) -> _LoopbackStream:
        stream = _LoopbackStream(self._endpoint(target), self._auth, target, timeout)
        self._streams.add(stream)
        stream._task.add_done_callback(lambda _: self._streams.discard(stream))
        return stream

    async def aclose(self) -> None:
        streams, self._streams = self._streams, set()
        for stream in streams:
            stream.cancel()
            with contextlib.suppress(BaseException):
                await stream._task
