"""Routing: which provider serves a gRPC path, from the verified configuration only, cached per serial."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from gateway_samples import GW1, POPULATION, PROVIDER, SERVICE

from crossway.core.errors import MethodUnknown, ProviderUnreachable, ServiceAmbiguous, ServiceUnknown
from crossway.core.ids import GatewayId, MemberId, SubsystemId
from crossway.demo.federation import population_descriptor_set
from crossway.security.keys import generate_x25519_key, x25519_public_raw
from gateway.client.routing import Router, split_grpc_path
from registry import RegistryAuthority, VerifiedConfiguration

Configure = Callable[[], VerifiedConfiguration]

GET_PERSON = "/population.v1.PersonRegistry/GetPerson"
SECOND = MemberId.parse("EE/GOV/70000003")
SECOND_POPULATION = SubsystemId.parse("EE/GOV/70000003/population")


def _add_second_provider(authority: RegistryAuthority, *, gateway: bool = True, encrypted: bool = False) -> None:
    authority.add_member(SECOND, "Second Register")
    authority.add_subsystem(SECOND_POPULATION)
    if gateway:
        authority.add_gateway(GatewayId(SECOND, "gw1"), "gw1.second.example:7443")
    authority.add_service(
        SECOND_POPULATION.service("population.v1.PersonRegistry"), population_descriptor_set(), encrypted
    )


def test_a_service_with_one_provider_resolves_to_its_gateways(configure: Configure) -> None:
    config = configure()
    route = Router().resolve(config, GET_PERSON, "")
    assert route.service == SERVICE
    assert route.method == "GetPerson"
    assert route.provider == PROVIDER
    assert route.addresses == ("gw1.population.example:7443",)
    assert route.gateways == (str(GW1),)
    assert route.encryption_key is None
    assert route.serial == config.serial
    assert (route.shape.client_streaming, route.shape.server_streaming, route.streaming) == (False, False, False)


def test_the_route_carries_the_methods_streaming_shape(configure: Configure) -> None:
    route = Router().resolve(configure(), "/population.v1.PersonRegistry/ImportPeople", "")
    assert (route.shape.client_streaming, route.shape.server_streaming, route.streaming) == (True, False, True)


def test_an_unknown_grpc_service_is_service_unknown(configure: Configure) -> None:
    with pytest.raises(ServiceUnknown, match=re.escape("no member offers gRPC service tax.v1.Returns")):
        Router().resolve(configure(), "/tax.v1.Returns/Get", "")


def test_an_unknown_method_of_a_known_service_is_method_unknown(configure: Configure) -> None:
    with pytest.raises(MethodUnknown, match=f"service {SERVICE} has no method DeletePerson"):
        Router().resolve(configure(), "/population.v1.PersonRegistry/DeletePerson", "")


def test_two_providers_of_one_grpc_service_are_ambiguous_without_a_hint(
    authority: RegistryAuthority, configure: Configure
) -> None:
    _add_second_provider(authority)
    with pytest.raises(ServiceAmbiguous) as caught:
        Router().resolve(configure(), GET_PERSON, "")
    assert str(POPULATION) in caught.value.message and str(SECOND_POPULATION) in caught.value.message


def test_a_provider_hint_picks_one_of_several_providers(authority: RegistryAuthority, configure: Configure) -> None:
    _add_second_provider(authority)
    config = configure()
    router = Router()
    assert router.resolve(config, GET_PERSON, str(SECOND_POPULATION)).provider == SECOND
    assert router.resolve(config, GET_PERSON, str(POPULATION)).provider == PROVIDER
    assert router.resolve(config, GET_PERSON, str(POPULATION)).addresses == ("gw1.population.example:7443",)


def test_a_provider_hint_naming_a_subsystem_that_does_not_offer_the_service_is_service_unknown(
    configure: Configure,
) -> None:
    with pytest.raises(ServiceUnknown, match="at EE/GOV/70000002/tax"):
        Router().resolve(configure(), GET_PERSON, "EE/GOV/70000002/tax")


def test_a_provider_without_gateways_is_unreachable(authority: RegistryAuthority, configure: Configure) -> None:
    _add_second_provider(authority, gateway=False)
    with pytest.raises(ProviderUnreachable, match=f"member {SECOND} has no gateway"):
        Router().resolve(configure(), GET_PERSON, str(SECOND_POPULATION))


def test_a_service_requiring_encryption_routes_with_the_providers_encryption_key(
    authority: RegistryAuthority, configure: Configure
) -> None:
    _add_second_provider(authority, encrypted=True)
    raw = x25519_public_raw(generate_x25519_key())
    authority.set_encryption_key(SECOND, raw)
    config = configure()
    assert Router().resolve(config, GET_PERSON, str(SECOND_POPULATION)).encryption_key == raw
    # The key goes only with services that require it.
    assert Router().resolve(config, GET_PERSON, str(POPULATION)).encryption_key is None


def test_a_service_requiring_encryption_without_a_published_key_is_unreachable(
    authority: RegistryAuthority, configure: Configure
) -> None:
    _add_second_provider(authority, encrypted=True)
    with pytest.raises(ProviderUnreachable, match=f"requires encryption but {SECOND} published no encryption key"):
        Router().resolve(configure(), GET_PERSON, str(SECOND_POPULATION))


def test_the_same_serial_is_served_from_the_cache(configure: Configure) -> None:
    config = configure()
    router = Router()
    assert router.resolve(config, GET_PERSON, "") is router.resolve(config, GET_PERSON, "")


def test_a_cached_error_is_raised_as_a_fresh_instance_each_time(configure: Configure) -> None:
    config = configure()
    router = Router()
    raised = []
    for _ in range(2):
        with pytest.raises(ServiceUnknown) as caught:
            router.resolve(config, "/tax.v1.Returns/Get", "")
        raised.append(caught.value)
    assert raised[0] is not raised[1]
    assert raised[0].message == raised[1].message


def test_a_new_configuration_serial_invalidates_the_cache(authority: RegistryAuthority, configure: Configure) -> None:
    router = Router()
    first = configure()
    assert router.resolve(first, GET_PERSON, "").addresses == ("gw1.population.example:7443",)
    authority.set_gateway_address(GW1, "gw1-new.population.example:8443")
    second = configure()
    assert second.serial != first.serial
    route = router.resolve(second, GET_PERSON, "")
    assert route.addresses == ("gw1-new.population.example:8443",)
    assert route.serial == second.serial


def test_a_cached_error_is_dropped_when_the_serial_changes(authority: RegistryAuthority, configure: Configure) -> None:
    router = Router()
    with pytest.raises(ServiceUnknown):
        router.resolve(configure(), GET_PERSON, str(SECOND_POPULATION))
    _add_second_provider(authority)
    assert router.resolve(configure(), GET_PERSON, str(SECOND_POPULATION)).provider == SECOND


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/population.v1.PersonRegistry/GetPerson", ("population.v1.PersonRegistry", "GetPerson")),
        ("/Svc/M", ("Svc", "M")),
    ],
)
def test_split_grpc_path_returns_service_and_method(path: str, expected: tuple[str, str]) -> None:
    assert split_grpc_path(path) == expected


@pytest.mark.parametrize("path", ["", "/", "//", "/pkg.Svc", "/pkg.Svc/", "//GetPerson", "pkg.Svc/GetPerson"])
def test_split_grpc_path_rejects_what_is_not_a_method_path(path: str) -> None:
    with pytest.raises(MethodUnknown, match="is not a gRPC method path"):
        split_grpc_path(path)
