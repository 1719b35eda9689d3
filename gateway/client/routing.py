"""Client-side step 2: which provider serves this gRPC service, and where are its gateways?

Resolved from the verified registry configuration only, and cached per configuration serial
(a routing decision is a dict hit on the hot path; a new configuration starts a new cache).
"""

from __future__ import annotations

from dataclasses import dataclass

from crossway.core.errors import (
    CrosswayError,
    MethodUnknown,
    PeerDisabled,
    ProviderUnreachable,
    ServiceAmbiguous,
    ServiceUnknown,
)
from crossway.core.ids import MemberId, ServiceId, SubsystemId
from gateway.shared.metaservice import ALLOWED_METHODS, ALLOWED_METHODS_PATH
from gateway.wire.link import PeerTarget
from registry.configuration import GatewayView, MemberView, MethodShape, VerifiedConfiguration

__all__ = ["Route", "Router", "split_grpc_path"]


@dataclass(frozen=True, slots=True)
class Route:
    service: ServiceId
    method: str
    shape: MethodShape
    provider: MemberId
    targets: tuple[PeerTarget, ...]  # the provider's gateways, in the order to try them
    encryption_key: bytes | None  # set when the service requires end-to-end encryption
    serial: int

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(t.address for t in self.targets)

    @property
    def gateways(self) -> tuple[str, ...]:
        return tuple(t.gateway for t in self.targets)

    @property
    def streaming(self) -> bool:
        return self.shape.client_streaming or self.shape.server_streaming


def split_grpc_path(path: str) -> tuple[str, str]:
    """``/pkg.Service/Method`` → (``pkg.Service``, ``Method``)."""
    _, _, rest = path.partition("/")
    service, sep, method = rest.partition("/")
    if not sep or not service or not method:
        raise MethodUnknown(f"{path!r} is not a gRPC method path", hint="call through a generated gRPC stub")
    return service, method


class Router:
    def __init__(self) -> None:
        self._serial = -1
        self._cache: dict[tuple[str, str], Route | CrosswayError] = {}

    def resolve(self, config: VerifiedConfiguration, grpc_path: str, provider_hint: str) -> Route:
        if config.serial != self._serial:
            self._cache = {}
            self._serial = config.serial
        key = (grpc_path, provider_hint)
        hit = self._cache.get(key)
        if hit is None:
            try:
                hit = self._resolve(config, grpc_path, provider_hint)
            except CrosswayError as exc:
                hit = exc
            if len(self._cache) < 10_000:
                self._cache[key] = hit
        if isinstance(hit, CrosswayError):
            # A fresh instance per call: errors are mutated (hop) and raised concurrently.
            raise type(hit)(hit.message, hint=hit.hint)
        return hit

    @staticmethod
    def _resolve(config: VerifiedConfiguration, grpc_path: str, provider_hint: str) -> Route:
        if grpc_path == ALLOWED_METHODS_PATH:
            return _allowed_methods_route(config, provider_hint)
        grpc_service, method = split_grpc_path(grpc_path)
        candidates = config.providers_of(grpc_service)
        if provider_hint:
            hint = SubsystemId.parse(provider_hint)
            candidates = tuple(s for s in candidates if s.id.subsystem == hint)
        if not candidates:
            where = f" at {provider_hint}" if provider_hint else ""
            raise ServiceUnknown(f"no member offers gRPC service {grpc_service}{where}")
        if len(candidates) > 1:
            names = ", ".join(str(s.id.subsystem) for s in candidates)
            raise ServiceAmbiguous(f"{grpc_service} is offered by several subsystems: {names}")
        view = candidates[0]
        config.check_service_enabled(view.id)  # service.disabled: the registry operator's (issue 17)
        shape = view.methods.get(method)
        if shape is None:
            raise MethodUnknown(f"service {view.id} has no method {method}")
        provider = view.id.subsystem.member
        member, gateways = _gateways(config, provider)
        key = None
        if view.require_encryption:
            key = member.encryption_public_key if member else None
            if not key:
                raise ProviderUnreachable(
                    f"service {view.id} requires encryption but {provider} published no encryption key"
                )
        return Route(
            service=view.id,
            method=method,
            shape=shape,
            provider=provider,
            targets=_targets(config, provider, gateways),
            encryption_key=key,
            serial=config.serial,
        )


def _gateways(config: VerifiedConfiguration, provider: MemberId) -> tuple[MemberView | None, tuple[GatewayView, ...]]:
    member = config.member(provider)
    listed = tuple(g for g in (member.gateways if member else ()) if g.peer_address)
    # A gateway the registry operator disabled is not tried (issue 17).
    gateways = tuple(g for g in listed if not config.is_disabled("gateway", g.id))
    if listed and not gateways:
        raise PeerDisabled(f"every gateway of {provider} is disabled in the registry configuration")
    if not gateways:
        raise ProviderUnreachable(f"member {provider} has no gateway in the registry configuration")
    return member, gateways


def _targets(
    config: VerifiedConfiguration, provider: MemberId, gateways: tuple[GatewayView, ...]
) -> tuple[PeerTarget, ...]:
    return tuple(PeerTarget(g.peer_address, str(g.id), str(provider), config.ca_pem) for g in gateways)


def _allowed_methods_route(config: VerifiedConfiguration, service_id: str) -> Route:
    """The metaservice AllowedMethods goes to the provider of the service it asks about
    (``gateway.shared.metaservice`` puts that service's id where a provider hint would be). Never encrypted:
    the request has no body, the answer only method names."""
    view = config.service(ServiceId.parse(service_id))
    if view is None:
        raise ServiceUnknown(f"the registry lists no service {service_id}")
    config.check_service_enabled(view.id)
    provider = view.id.subsystem.member
    _, gateways = _gateways(config, provider)
    return Route(
        service=view.id,
        method=ALLOWED_METHODS,
        shape=MethodShape(ALLOWED_METHODS, False, False, "", ""),
        provider=provider,
        targets=_targets(config, provider, gateways),
        encryption_key=None,
        serial=config.serial,
    )
