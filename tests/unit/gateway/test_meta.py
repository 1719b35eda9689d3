"""Metaservices: finding a service by id or gRPC name, and the AllowedMethods route to its provider."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from gateway_samples import GW1, PROVIDER, SERVICE

from crossway.core.errors import ServiceUnknown
from gateway.client.routing import Router
from gateway.shared.metaservice import ALLOWED_METHODS, ALLOWED_METHODS_PATH, encode_allowed_methods, find_service
from protos.crossway.v1 import meta_pb2
from registry import VerifiedConfiguration

Configure = Callable[[], VerifiedConfiguration]


def test_a_service_is_found_by_its_id_or_its_grpc_name(configure: Configure) -> None:
    config = configure()
    assert find_service(config, str(SERVICE)).id == SERVICE
    assert find_service(config, "population.v1.PersonRegistry").id == SERVICE
    for unknown in ("", "nope.v1.Nothing", "EE/GOV/70000001/population/nope.v1.Nothing"):
        with pytest.raises(ServiceUnknown):
            find_service(config, unknown)


def test_allowed_methods_is_routed_to_the_provider_unencrypted_under_a_reserved_method(configure: Configure) -> None:
    route = Router().resolve(configure(), ALLOWED_METHODS_PATH, str(SERVICE))
    assert (route.service, route.provider, route.gateways) == (SERVICE, PROVIDER, (str(GW1),))
    assert route.method == ALLOWED_METHODS and "/" in route.method  # no gRPC method can be named so
    assert route.encryption_key is None and not route.streaming


def test_the_allowed_methods_answer_lists_the_methods_with_their_shapes(configure: Configure) -> None:
    view = configure().service(SERVICE)
    assert view is not None
    answer = meta_pb2.AllowedMethodsResponse.FromString(
        encode_allowed_methods(SERVICE, [view.methods["ListPeople"]], "v3")
    )
    assert answer.service == str(SERVICE) and answer.policy_version == "v3"
    assert [(m.name, m.server_streaming) for m in answer.methods] == [("ListPeople", True)]
