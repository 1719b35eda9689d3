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

Each family lives in a module of this package (``client``, ``routing``, ``registry``, ``message``,
``peer``, ``policy``, ``admin``, ``upstream``; ``general`` for the errors without one), the root
in ``base`` and the code lookup in ``codes``; import the names from ``crossway.core.errors``.
"""

from __future__ import annotations

from crossway.core.errors.admin import AdminConflict, AdminError, AdminForbidden, AdminUnauthenticated
from crossway.core.errors.base import CrosswayError, Hop
from crossway.core.errors.client import (
    ClientAuthError,
    ClientDisabled,
    ClientMetadataInvalid,
    ClientUnknown,
    TokenInvalid,
    Unauthenticated,
)
from crossway.core.errors.codes import error_class_for_code
from crossway.core.errors.general import (
    AuditUnavailable,
    ConfigError,
    DeadlineExceeded,
    HealthUnavailable,
    InternalError,
    InvalidIdentifier,
)
from crossway.core.errors.message import (
    DeadlineTooFar,
    DecryptionFailed,
    MessageError,
    MessageExpired,
    MessageMalformed,
    MessageReplayed,
    MessageTampered,
    MessageTooLarge,
    SignatureInvalid,
    StreamBroken,
)
from crossway.core.errors.peer import PeerDisabled, PeerError, PeerRevoked, PeerUntrusted
from crossway.core.errors.policy import PolicyDenied, PolicyError, PolicyUnavailable, RateLimited, UserTokenInvalid
from crossway.core.errors.registry import RegistryError, RegistryStale, RegistryUnavailable, RegistryUntrusted
from crossway.core.errors.routing import (
    MethodUnknown,
    ProviderUnreachable,
    RoutingError,
    ServiceAmbiguous,
    ServiceDisabled,
    ServiceUnknown,
)
from crossway.core.errors.upstream import UpstreamError, UpstreamFailed, UpstreamTimeout, UpstreamUnavailable

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
