"""The error tree: stable codes, one gRPC status per class, and rebuilding an error from its code."""

from __future__ import annotations

import grpc
import pytest

from crossway.core import errors
from crossway.core.errors import (
    CrosswayError,
    Hop,
    ServiceUnknown,
    UpstreamFailed,
    error_class_for_code,
)
from crossway.core.errors import codes as code_lookup

# The tree drawn in the errors package's docstring: class → (code, gRPC status). Codes are a public
# contract, so this table is written out rather than read back from the classes it checks.
DOCUMENTED: dict[str, tuple[str, grpc.StatusCode]] = {
    "InvalidIdentifier": ("id.invalid", grpc.StatusCode.INVALID_ARGUMENT),
    "ConfigError": ("config.invalid", grpc.StatusCode.FAILED_PRECONDITION),
    "Unauthenticated": ("client.unauthenticated", grpc.StatusCode.UNAUTHENTICATED),
    "TokenInvalid": ("client.token_invalid", grpc.StatusCode.UNAUTHENTICATED),
    "ClientUnknown": ("client.unknown", grpc.StatusCode.PERMISSION_DENIED),
    "ClientDisabled": ("client.disabled", grpc.StatusCode.PERMISSION_DENIED),
    "ServiceDisabled": ("service.disabled", grpc.StatusCode.FAILED_PRECONDITION),
    "PeerDisabled": ("peer.disabled", grpc.StatusCode.PERMISSION_DENIED),
    "ClientMetadataInvalid": ("client.metadata_invalid", grpc.StatusCode.INVALID_ARGUMENT),
    "ServiceUnknown": ("service.unknown", grpc.StatusCode.NOT_FOUND),
    "ServiceAmbiguous": ("service.ambiguous", grpc.StatusCode.FAILED_PRECONDITION),
    "MethodUnknown": ("method.unknown", grpc.StatusCode.UNIMPLEMENTED),
    "ProviderUnreachable": ("peer.unavailable", grpc.StatusCode.UNAVAILABLE),
    "RegistryStale": ("registry.stale", grpc.StatusCode.UNAVAILABLE),
    "RegistryUntrusted": ("registry.untrusted", grpc.StatusCode.UNAVAILABLE),
    "RegistryUnavailable": ("registry.unavailable", grpc.StatusCode.UNAVAILABLE),
    "MessageMalformed": ("message.malformed", grpc.StatusCode.INVALID_ARGUMENT),
    "MessageTooLarge": ("message.too_large", grpc.StatusCode.RESOURCE_EXHAUSTED),
    "DeadlineTooFar": ("message.deadline_too_far", grpc.StatusCode.INVALID_ARGUMENT),
    "MessageTampered": ("message.tampered", grpc.StatusCode.INVALID_ARGUMENT),
    "SignatureInvalid": ("message.signature_invalid", grpc.StatusCode.UNAUTHENTICATED),
    "MessageReplayed": ("message.replayed", grpc.StatusCode.ALREADY_EXISTS),
    "MessageExpired": ("message.expired", grpc.StatusCode.DEADLINE_EXCEEDED),
    "StreamBroken": ("message.stream_broken", grpc.StatusCode.DATA_LOSS),
    "DecryptionFailed": ("message.decryption_failed", grpc.StatusCode.INVALID_ARGUMENT),
    "PeerUntrusted": ("peer.untrusted", grpc.StatusCode.UNAUTHENTICATED),
    "PeerRevoked": ("peer.revoked", grpc.StatusCode.UNAUTHENTICATED),
    "PolicyDenied": ("policy.denied", grpc.StatusCode.PERMISSION_DENIED),
    "PolicyUnavailable": ("policy.unavailable", grpc.StatusCode.UNAVAILABLE),
    "RateLimited": ("policy.rate_limited", grpc.StatusCode.RESOURCE_EXHAUSTED),
    "UserTokenInvalid": ("policy.user_token_invalid", grpc.StatusCode.UNAUTHENTICATED),
    "AdminUnauthenticated": ("admin.unauthenticated", grpc.StatusCode.UNAUTHENTICATED),
    "AdminForbidden": ("admin.forbidden", grpc.StatusCode.PERMISSION_DENIED),
    "AdminConflict": ("admin.conflict", grpc.StatusCode.ABORTED),
    "UpstreamUnavailable": ("upstream.unavailable", grpc.StatusCode.UNAVAILABLE),
    "UpstreamTimeout": ("upstream.deadline_exceeded", grpc.StatusCode.DEADLINE_EXCEEDED),
    "UpstreamFailed": ("upstream.error", grpc.StatusCode.UNKNOWN),
    "DeadlineExceeded": ("deadline.exceeded", grpc.StatusCode.DEADLINE_EXCEEDED),
    "AuditUnavailable": ("audit.unavailable", grpc.StatusCode.UNAVAILABLE),
    "HealthUnavailable": ("health.unavailable", grpc.StatusCode.UNAVAILABLE),
    "InternalError": ("internal", grpc.StatusCode.INTERNAL),
}


def _core_classes() -> list[type[CrosswayError]]:
    return [
        obj
        for name in errors.__all__
        if isinstance(obj := getattr(errors, name), type) and issubclass(obj, CrosswayError)
    ]


def _core_leaves() -> list[type[CrosswayError]]:
    # A leaf of the *core* tree: no subclass defined in the errors package itself (areas may add more).
    core = set(_core_classes())
    return [cls for cls in core if not any(sub in core for sub in cls.__subclasses__())]


def test_the_documented_tree_lists_exactly_the_core_leaves() -> None:
    assert {cls.__name__ for cls in _core_leaves()} == set(DOCUMENTED)


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_each_leaf_has_its_documented_code_and_grpc_status(name: str) -> None:
    cls = getattr(errors, name)
    code, status = DOCUMENTED[name]
    assert cls.code == code
    assert cls("x").status == status


def test_every_core_leaf_has_its_own_code() -> None:
    codes = [cls.code for cls in _core_leaves()]
    assert len(codes) == len(set(codes))


def test_every_class_in_the_tree_maps_to_a_grpc_status_that_is_not_ok() -> None:
    for cls in _core_classes():
        status = cls("x").status
        assert isinstance(status, grpc.StatusCode), cls
        assert status is not grpc.StatusCode.OK, cls


@pytest.fixture(autouse=True)
def fresh_code_index(monkeypatch: pytest.MonkeyPatch) -> None:
    # The index is filled lazily and never emptied, so what a lookup returns depends on which modules
    # were imported before the first one. Start each test from an empty index, like a fresh process.
    monkeypatch.setattr(code_lookup, "_BY_CODE", {})


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_the_code_of_each_leaf_resolves_back_to_that_leaf_in_a_gateway_process(name: str) -> None:
    import audit.trail.record  # noqa: F401  (every gateway process imports its audit record)

    cls = getattr(errors, name)
    assert error_class_for_code(cls.code) is cls


def test_an_unknown_code_resolves_to_upstream_failed() -> None:
    assert error_class_for_code("no.such.code") is UpstreamFailed
    assert error_class_for_code("") is UpstreamFailed


def test_codes_defined_in_other_packages_resolve_once_imported() -> None:
    from crossway.security.pki import CertificateRequestInvalid
    from policies import PolicyInvalid

    assert error_class_for_code("policy.invalid") is PolicyInvalid
    assert error_class_for_code("registry.csr_invalid") is CertificateRequestInvalid
    # They stay config errors: the tree's status table applies to them too.
    assert PolicyInvalid("x").status is grpc.StatusCode.FAILED_PRECONDITION


def test_a_code_looked_up_before_its_class_exists_resolves_after_the_class_is_defined() -> None:
    code = "test.defined_late"
    assert error_class_for_code(code) is UpstreamFailed  # the miss must not be cached

    class DefinedLate(CrosswayError):
        code = "test.defined_late"

    assert error_class_for_code(code) is DefinedLate


def test_details_carry_the_hop_prefix_then_the_code_then_the_message() -> None:
    error = ServiceUnknown("no member offers x.v1.Svc", hop=Hop.CLIENT)
    assert error.details() == "client gateway: service.unknown: no member offers x.v1.Svc"
    assert ServiceUnknown("m").details() == "crossway: service.unknown: m"


def test_at_sets_the_hop_of_a_local_error_and_returns_the_same_error() -> None:
    error = ServiceUnknown("m")
    assert error.at(Hop.PROVIDER) is error
    assert error.hop is Hop.PROVIDER
    assert error.details().startswith("provider gateway: ")


def test_at_keeps_a_hop_that_is_already_set() -> None:
    error = UpstreamFailed("boom", hop=Hop.BACKEND)
    error.at(Hop.CLIENT)
    assert error.hop is Hop.BACKEND
    first = ServiceUnknown("m").at(Hop.PROVIDER)
    assert first.at(Hop.CLIENT).hop is Hop.PROVIDER


def test_the_hint_defaults_per_class_and_an_explicit_hint_wins() -> None:
    assert ServiceUnknown("m").hint == ServiceUnknown.default_hint
    assert ServiceUnknown("m", hint="do this").hint == "do this"
    assert str(ServiceUnknown("m", hint="do this")) == "service.unknown: m (hint: do this)"


def test_upstream_failed_carries_the_backends_own_status() -> None:
    assert UpstreamFailed("m", status=grpc.StatusCode.NOT_FOUND).status is grpc.StatusCode.NOT_FOUND
    assert UpstreamFailed("m").status is grpc.StatusCode.UNKNOWN


def test_leaves_defined_in_other_packages_do_not_reuse_a_leaf_code() -> None:
    import audit.trail.record  # noqa: F401
    import policies  # noqa: F401
    from crossway.security import pki  # noqa: F401

    def leaves(cls: type[CrosswayError]) -> list[type[CrosswayError]]:
        subs = cls.__subclasses__()
        return [cls] if not subs else [leaf for sub in subs for leaf in leaves(sub)]

    codes = [cls.code for cls in leaves(CrosswayError)]
    assert len(codes) == len(set(codes)), sorted(c for c in codes if codes.count(c) > 1)
