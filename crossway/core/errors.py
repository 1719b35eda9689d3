"""One error tree for all of Crossway.

Every error has a stable ``code`` (what scripts and dashboards match on), a ``message``
(what happened, with ids, never secrets or payload bytes), a ``hint`` (what a person can do)
and the gRPC status it maps to. The ``hop`` says which side failed — the client gateway,
the provider gateway or the backend — and becomes the prefix of the gRPC details string.

    CrosswayError
    ├── InvalidIdentifier           id.invalid                 INVALID_ARGUMENT
    ├── ConfigError                 config.invalid             FAILED_PRECONDITION
    ├── ClientAuthError
    │   ├── Unauthenticated         client.unauthenticated     UNAUTHENTICATED
    │   ├── TokenInvalid            client.token_invalid       UNAUTHENTICATED
    │   ├── ClientUnknown           client.unknown             PERMISSION_DENIED
    │   └── ClientDisabled          client.disabled            PERMISSION_DENIED
    ├── ClientMetadataInvalid       client.metadata_invalid    INVALID_ARGUMENT
    ├── RoutingError
    │   ├── ServiceUnknown          service.unknown            NOT_FOUND
    │   ├── ServiceAmbiguous        service.ambiguous          FAILED_PRECONDITION
    │   ├── MethodUnknown           method.unknown             UNIMPLEMENTED
    │   ├── ProviderUnreachable     peer.unavailable           UNAVAILABLE
    │   └── ServiceDisabled         service.disabled           FAILED_PRECONDITION
    ├── RegistryError
    │   ├── RegistryStale           registry.stale             UNAVAILABLE
    │   ├── RegistryUntrusted       registry.untrusted         UNAVAILABLE
    │   └── RegistryUnavailable     registry.unavailable       UNAVAILABLE
    ├── MessageError
    │   ├── MessageMalformed        message.malformed          INVALID_ARGUMENT
    │   ├── MessageTooLarge         message.too_large          RESOURCE_EXHAUSTED
    │   ├── DeadlineTooFar          message.deadline_too_far   INVALID_ARGUMENT
    │   ├── MessageTampered         message.tampered           INVALID_ARGUMENT
    │   ├── SignatureInvalid        message.signature_invalid  UNAUTHENTICATED
    │   ├── MessageReplayed         message.replayed           ALREADY_EXISTS
    │   ├── MessageExpired          message.expired            DEADLINE_EXCEEDED
    │   ├── StreamBroken            message.stream_broken      DATA_LOSS
    │   └── DecryptionFailed        message.decryption_failed  INVALID_ARGUMENT
    ├── PeerError
    │   ├── PeerUntrusted           peer.untrusted             UNAUTHENTICATED
    │   ├── PeerRevoked             peer.revoked               UNAUTHENTICATED
    │   └── PeerDisabled            peer.disabled              PERMISSION_DENIED
    ├── PolicyError
    │   ├── PolicyDenied            policy.denied              PERMISSION_DENIED
    │   ├── PolicyUnavailable       policy.unavailable         UNAVAILABLE
    │   ├── RateLimited             policy.rate_limited        RESOURCE_EXHAUSTED
    │   └── UserTokenInvalid        policy.user_token_invalid  UNAUTHENTICATED
    ├── AdminError
    │   ├── AdminUnauthenticated    admin.unauthenticated      UNAUTHENTICATED
    │   ├── AdminForbidden          admin.forbidden            PERMISSION_DENIED
    │   └── AdminConflict           admin.conflict             ABORTED
    ├── UpstreamError
    │   ├── UpstreamUnavailable     upstream.unavailable       UNAVAILABLE
    │   ├── UpstreamTimeout         upstream.deadline_exceeded DEADLINE_EXCEEDED
    │   └── UpstreamFailed          upstream.error             (the backend's status)
    ├── DeadlineExceeded            deadline.exceeded          DEADLINE_EXCEEDED
    ├── AuditUnavailable            audit.unavailable          UNAVAILABLE
    ├── HealthUnavailable           health.unavailable         UNAVAILABLE
    └── InternalError               internal                   INTERNAL

Codes are part of the public contract: never rename one; add new ones.
"""

from __future__ import annotations

import enum
from typing import ClassVar

import grpc

__all__ = [
    "AdminConflict",
    "AdminError",
    "AdminForbidden",
    "AdminUnauthenticated",
    "AuditUnavailable",
    "ClientAuthError",
    "ClientDisabled",
    "ClientMetadataInvalid",
    "ClientUnknown",
    "ConfigError",
    "CrosswayError",
    "DeadlineExceeded",
    "DeadlineTooFar",
    "DecryptionFailed",
    "HealthUnavailable",
    "Hop",
    "InternalError",
    "InvalidIdentifier",
    "MessageError",
    "MessageExpired",
    "MessageMalformed",
    "MessageReplayed",
    "MessageTampered",
    "MessageTooLarge",
    "MethodUnknown",
    "PeerDisabled",
    "PeerError",
    "PeerRevoked",
    "PeerUntrusted",
    "PolicyDenied",
    "PolicyError",
    "PolicyUnavailable",
    "RateLimited",
    "ProviderUnreachable",
    "RegistryError",
    "RegistryStale",
    "RegistryUnavailable",
    "RegistryUntrusted",
    "RoutingError",
    "ServiceAmbiguous",
    "ServiceDisabled",
    "ServiceUnknown",
    "SignatureInvalid",
    "StreamBroken",
    "TokenInvalid",
    "Unauthenticated",
    "UpstreamError",
    "UpstreamFailed",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "UserTokenInvalid",
    "error_class_for_code",
]


class Hop(enum.Enum):
    """Which hop of an exchange failed; shown as the prefix of the error message."""

    CLIENT = "client gateway"
    PROVIDER = "provider gateway"
    BACKEND = "backend"
    LOCAL = "crossway"


class CrosswayError(Exception):
    code: ClassVar[str] = "internal"
    grpc_status: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL
    default_hint: ClassVar[str] = "see the gateway's log for this message id"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        hop: Hop = Hop.LOCAL,
        status: grpc.StatusCode | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint
        self.hop = hop
        # Only UpstreamFailed carries a status of its own (the backend's).
        self._status = status

    @property
    def status(self) -> grpc.StatusCode:
        return self._status or self.grpc_status

    def at(self, hop: Hop) -> CrosswayError:
        """Mark which hop raised this error (keeps an already-set hop)."""
        if self.hop is Hop.LOCAL:
            self.hop = hop
        return self

    def details(self) -> str:
        """The gRPC details string: hop prefix, code, message."""
        return f"{self.hop.value}: {self.code}: {self.message}"

    def __str__(self) -> str:
        return f"{self.code}: {self.message} (hint: {self.hint})"


class InvalidIdentifier(CrosswayError, ValueError):
    code = "id.invalid"
    grpc_status = grpc.StatusCode.INVALID_ARGUMENT
    default_hint = "identifiers look like EE/GOV/70000001/subsystem"


class ConfigError(CrosswayError):
    code = "config.invalid"
    grpc_status = grpc.StatusCode.FAILED_PRECONDITION
    default_hint = "fix the named file and key, then start again"


class ClientAuthError(CrosswayError):
    code = "client.unauthenticated"
    grpc_status = grpc.StatusCode.UNAUTHENTICATED


class Unauthenticated(ClientAuthError):
    code = "client.unauthenticated"
    default_hint = "present a client certificate registered for your subsystem, or a bearer JWT"


class TokenInvalid(ClientAuthError):
    code = "client.token_invalid"
    default_hint = "get a fresh token from your identity provider; check iss, aud and exp"


class ClientUnknown(ClientAuthError):
    code = "client.unknown"
    grpc_status = grpc.StatusCode.PERMISSION_DENIED
    default_hint = "register the subsystem with this gateway and the registry first"


class ClientMetadataInvalid(CrosswayError):
    """The caller's gRPC metadata is unusable: too many entries, too large, or a Crossway key
    given twice or with a value that cannot be right. Refused before anything is sent."""

    code = "client.metadata_invalid"
    grpc_status = grpc.StatusCode.INVALID_ARGUMENT
    default_hint = "send each crossway-* metadata key at most once, with a short printable value, and few other entries"


class ClientDisabled(ClientAuthError):
    """The registry operator disabled the calling subsystem or its member (issue 17)."""

    code = "client.disabled"
    grpc_status = grpc.StatusCode.PERMISSION_DENIED
    default_hint = "the registry operator disabled this client; ask them to enable it (crossway registry … enable)"


class RoutingError(CrosswayError):
    code = "service.unknown"
    grpc_status = grpc.StatusCode.NOT_FOUND


class ServiceUnknown(RoutingError):
    code = "service.unknown"
    default_hint = "check the service name; `crossway registry services` lists what is published"


class ServiceAmbiguous(RoutingError):
    code = "service.ambiguous"
    grpc_status = grpc.StatusCode.FAILED_PRECONDITION
    default_hint = "name the provider subsystem in the `crossway-service` metadata"


class MethodUnknown(RoutingError):
    code = "method.unknown"
    grpc_status = grpc.StatusCode.UNIMPLEMENTED
    default_hint = "the service's registered descriptor has no such method; regenerate your stubs"


class ProviderUnreachable(RoutingError):
    code = "peer.unavailable"
    grpc_status = grpc.StatusCode.UNAVAILABLE
    default_hint = "the provider's gateway did not answer; retry later or ask its operator"


class ServiceDisabled(RoutingError):
    """The registry operator disabled the service, its subsystem or its member (issue 17)."""

    code = "service.disabled"
    grpc_status = grpc.StatusCode.FAILED_PRECONDITION
    default_hint = "the registry operator disabled this service; ask its provider or the registry operator"


class RegistryError(CrosswayError):
    code = "registry.unavailable"
    grpc_status = grpc.StatusCode.UNAVAILABLE


class RegistryStale(RegistryError):
    code = "registry.stale"
    default_hint = "the gateway has no unexpired configuration; check that the registry is publishing"


class RegistryUntrusted(RegistryError):
    code = "registry.untrusted"
    default_hint = "the configuration does not verify against the pinned anchor; check the anchor file"


class RegistryUnavailable(RegistryError):
    code = "registry.unavailable"
    default_hint = "start the registry or check the NATS connection"


class MessageError(CrosswayError):
    code = "message.malformed"
    grpc_status = grpc.StatusCode.INVALID_ARGUMENT


class MessageMalformed(MessageError):
    code = "message.malformed"
    default_hint = "the peer sent an envelope this gateway cannot read; check both gateways' versions"


class MessageTooLarge(MessageError):
    code = "message.too_large"
    grpc_status = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_hint = (
        "send large payloads through a streaming method (they travel in signed chunks), "
        "or ask the operators of both gateways to raise [limits] max_message_bytes"
    )


class DeadlineTooFar(MessageError):
    code = "message.deadline_too_far"
    grpc_status = grpc.StatusCode.INVALID_ARGUMENT
    default_hint = "use a shorter deadline: the provider gateway bounds it ([limits] max_deadline_s)"


class MessageTampered(MessageError):
    code = "message.tampered"
    default_hint = "the body does not match its signed digest; the message was altered in transit"


class SignatureInvalid(MessageError):
    code = "message.signature_invalid"
    grpc_status = grpc.StatusCode.UNAUTHENTICATED
    default_hint = "the signature does not verify with the member's registered signing certificate"


class MessageReplayed(MessageError):
    code = "message.replayed"
    grpc_status = grpc.StatusCode.ALREADY_EXISTS
    default_hint = "every request needs a fresh message id; this one was already seen"


class MessageExpired(MessageError):
    code = "message.expired"
    grpc_status = grpc.StatusCode.DEADLINE_EXCEEDED
    default_hint = "the message is outside the allowed time window; check both clocks (NTP)"


class StreamBroken(MessageError):
    code = "message.stream_broken"
    grpc_status = grpc.StatusCode.DATA_LOSS
    default_hint = "a stream message was dropped, reordered or injected; retry the call"


class DecryptionFailed(MessageError):
    code = "message.decryption_failed"
    default_hint = "the body was not encrypted to this provider's current key; refresh configuration"


class PeerError(CrosswayError):
    code = "peer.untrusted"
    grpc_status = grpc.StatusCode.UNAUTHENTICATED


class PeerUntrusted(PeerError):
    code = "peer.untrusted"
    default_hint = "the peer's certificate is not one the registry issued to a gateway of that member"


class PeerRevoked(PeerError):
    code = "peer.revoked"
    default_hint = "the certificate was revoked by the registry; the member must get a new one"


class PeerDisabled(PeerError):
    """The registry operator disabled the gateway (or its member) at the other end (issue 17)."""

    code = "peer.disabled"
    grpc_status = grpc.StatusCode.PERMISSION_DENIED
    default_hint = "the registry operator disabled that gateway; ask them, or use another gateway of the member"


class PolicyError(CrosswayError):
    code = "policy.denied"
    grpc_status = grpc.StatusCode.PERMISSION_DENIED


class PolicyDenied(PolicyError):
    code = "policy.denied"
    default_hint = "ask the service owner for a policy that permits this client and method"


class PolicyUnavailable(PolicyError):
    code = "policy.unavailable"
    grpc_status = grpc.StatusCode.UNAVAILABLE
    default_hint = "the gateway has no valid policy set loaded; check its policy directory"


class RateLimited(PolicyError):
    code = "policy.rate_limited"
    grpc_status = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_hint = "slow down: retry after the time named in the message"


class UserTokenInvalid(PolicyError):
    code = "policy.user_token_invalid"
    grpc_status = grpc.StatusCode.UNAUTHENTICATED
    default_hint = (
        "send a fresh end-user token signed with a user-token key your agency registered "
        "(crossway registry member user-token-key), or send none"
    )


class AdminError(CrosswayError):
    code = "admin.forbidden"
    grpc_status = grpc.StatusCode.PERMISSION_DENIED


class AdminUnauthenticated(AdminError):
    code = "admin.unauthenticated"
    grpc_status = grpc.StatusCode.UNAUTHENTICATED
    default_hint = "send `authorization: Bearer <token>` from the admin identity provider in [admin]"


class AdminForbidden(AdminError):
    code = "admin.forbidden"
    default_hint = "policy-admin may apply and roll back; auditor and observer may read"


class AdminConflict(AdminError):
    code = "admin.conflict"
    grpc_status = grpc.StatusCode.ABORTED
    default_hint = "another change was applied meanwhile: diff again, then apply"


class UpstreamError(CrosswayError):
    code = "upstream.error"
    grpc_status = grpc.StatusCode.UNKNOWN


class UpstreamUnavailable(UpstreamError):
    code = "upstream.unavailable"
    grpc_status = grpc.StatusCode.UNAVAILABLE
    default_hint = "the backend did not answer; check that it runs and the adapter's address"


class UpstreamTimeout(UpstreamError):
    code = "upstream.deadline_exceeded"
    grpc_status = grpc.StatusCode.DEADLINE_EXCEEDED
    default_hint = "the backend was too slow for the caller's deadline"


class UpstreamFailed(UpstreamError):
    code = "upstream.error"
    default_hint = "the backend answered with an error; its message is passed on"


class DeadlineExceeded(CrosswayError):
    code = "deadline.exceeded"
    grpc_status = grpc.StatusCode.DEADLINE_EXCEEDED
    default_hint = "raise the call's deadline or retry"


class AuditUnavailable(CrosswayError):
    code = "audit.unavailable"
    grpc_status = grpc.StatusCode.UNAVAILABLE
    default_hint = "strict audit mode: the audit trail cannot be written; check NATS and the spool"


class HealthUnavailable(CrosswayError):
    """A gateway's health service could not be asked (``crossway gateway health``)."""

    code = "health.unavailable"
    grpc_status = grpc.StatusCode.UNAVAILABLE
    default_hint = (
        "check that the gateway runs, the address names its client or admin port, and --ca is the registry CA"
    )


class InternalError(CrosswayError):
    code = "internal"


def _all_subclasses(cls: type[CrosswayError]) -> list[type[CrosswayError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_all_subclasses(sub))
    return out


_BY_CODE: dict[str, type[CrosswayError]] = {}


def _index() -> None:
    # Walked again on a miss: areas define their own subclasses (e.g. policy.invalid) after import.
    # The classes of this module win for their codes, whatever is imported later or in what
    # order: a peer's `message.malformed` must be rebuilt as MessageMalformed, deterministically.
    core = [c for c in _all_subclasses(CrosswayError) if c.__module__ == __name__]
    others = [c for c in _all_subclasses(CrosswayError) if c.__module__ != __name__]
    for group in (core, others):
        for cls in group:
            # Within one module the most derived class wins over an abstract parent of the same code.
            known = _BY_CODE.get(cls.code)
            if known is None or (known.__module__ == cls.__module__ and issubclass(cls, known)):
                _BY_CODE[cls.code] = cls


def error_class_for_code(code: str) -> type[CrosswayError]:
    """The error class for a stable code (used to rebuild a peer's error); unknown → UpstreamFailed."""
    cls = _BY_CODE.get(code)
    if cls is None:
        _index()
        cls = _BY_CODE.get(code, UpstreamFailed)
    return cls
