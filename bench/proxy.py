"""A byte-forwarding gRPC proxy: the bare network path of a gateway, with no security work.

Any unary method is accepted by a generic handler with identity serializers and forwarded as
opaque bytes to one upstream over one pooled channel — the same gRPC machinery a gateway uses
per hop (grpc.aio server, generic handler, client channel), minus signing, policy and audit.
Two of these with mTLS between them form the ``proxy_chain`` of the benchmark.

    python -m bench.proxy '<spec json>'     # prints "proxy listening on 127.0.0.1:PORT"
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from crossway import eventloop

__all__ = ["ProxySpec"]

if TYPE_CHECKING:
    _GenericHandler = grpc.GenericRpcHandler[Any, Any]
else:
    _GenericHandler = grpc.GenericRpcHandler


@dataclass(frozen=True, slots=True)
class ProxySpec:
    listen: str
    upstream: str
    # Server side: TLS key/certificate (PEM files); with client_ca, client certificates are required.
    server_key: str = ""
    server_cert: str = ""
    client_ca: str = ""
    # Upstream side: the CA to trust, and our client key/certificate for mTLS.
    upstream_ca: str = ""
    upstream_key: str = ""
    upstream_cert: str = ""
    # The gateways' default event loop, so the baseline runs on the same machinery.
    event_loop: str = "uvloop"

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def _identity(data: bytes) -> bytes:
    return data


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


class _Forward(_GenericHandler):
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._channel = channel
        self._handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any] | None:
        method: str = details.method
        handler = self._handlers.get(method)
        if handler is None:
            handler = grpc.unary_unary_rpc_method_handler(self._forwarder(method))
            self._handlers[method] = handler
        return handler

    def _forwarder(self, method: str) -> Callable[..., Any]:
        upstream = self._channel.unary_unary(method, request_serializer=_identity, response_deserializer=_identity)

        async def forward(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            try:
                response: bytes = await upstream(request, timeout=context.time_remaining())
            except grpc.aio.AioRpcError as exc:
                await context.abort(exc.code(), exc.details() or "")
            return response

        return forward


async def _serve(spec: ProxySpec) -> None:
    if spec.upstream_ca:
        creds = grpc.ssl_channel_credentials(
            _read(spec.upstream_ca), _read(spec.upstream_key) or None, _read(spec.upstream_cert) or None
        )
        channel = grpc.aio.secure_channel(spec.upstream, creds)
    else:
        channel = grpc.aio.insecure_channel(spec.upstream)
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([_Forward(channel)])
    if spec.server_key:
        pair = [(_read(spec.server_key), _read(spec.server_cert))]
        roots = _read(spec.client_ca) if spec.client_ca else None
        port = server.add_secure_port(
            spec.listen, grpc.ssl_server_credentials(pair, root_certificates=roots, require_client_auth=bool(roots))
        )
    else:
        port = server.add_insecure_port(spec.listen)
    await server.start()
    print(f"proxy listening on {spec.listen.rpartition(':')[0]}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)
    await channel.close(None)


def main(argv: list[str]) -> int:
    spec = ProxySpec(**json.loads(argv[0]))
    eventloop.run(_serve(spec), spec.event_loop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
