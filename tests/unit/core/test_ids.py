"""Identifiers: one parser and one formatter per kind, a strict charset, and clear rejections."""

from __future__ import annotations

import random
import string
from typing import Any

import pytest

from crossway.core.errors import InvalidIdentifier
from crossway.core.ids import URI_SCHEME, GatewayId, MemberId, MethodId, ServiceId, SubsystemId

KINDS: list[tuple[Any, str]] = [
    (MemberId, "EE/GOV/70000001"),
    (SubsystemId, "EE/GOV/70000001/population"),
    (ServiceId, "EE/GOV/70000001/population/population.v1.PersonRegistry"),
    (MethodId, "EE/GOV/70000001/population/population.v1.PersonRegistry/GetPerson"),
    (GatewayId, "EE/GOV/70000001/gw1"),
]
KIND_IDS = [cls.__name__ for cls, _ in KINDS]

_UPPER_FIRST = string.ascii_uppercase + string.digits
_UPPER_REST = _UPPER_FIRST + "-"
_CODE_FIRST = string.ascii_letters + string.digits
_CODE_REST = _CODE_FIRST + "._-"
_IDENT_FIRST = string.ascii_letters + "_"
_IDENT_REST = _IDENT_FIRST + string.digits


def _word(rng: random.Random, first: str, rest: str, max_rest: int) -> str:
    return rng.choice(first) + "".join(rng.choice(rest) for _ in range(rng.randint(0, max_rest)))


def _random_method_text(rng: random.Random) -> str:
    instance = _word(rng, _UPPER_FIRST, _UPPER_REST, 31)
    member_class = _word(rng, _UPPER_FIRST, _UPPER_REST, 31)
    code = _word(rng, _CODE_FIRST, _CODE_REST, 63)
    subsystem = _word(rng, _CODE_FIRST, _CODE_REST, 63)
    service = ".".join(_word(rng, _IDENT_FIRST, _IDENT_REST, 10) for _ in range(rng.randint(1, 4)))
    method = _word(rng, _IDENT_FIRST, _IDENT_REST, 20)
    return f"{instance}/{member_class}/{code}/{subsystem}/{service}/{method}"


@pytest.mark.parametrize(("cls", "text"), KINDS, ids=KIND_IDS)
def test_parsing_then_formatting_gives_back_the_same_text(cls: Any, text: str) -> None:
    parsed = cls.parse(text)
    assert str(parsed) == text
    assert cls.parse(str(parsed)) == parsed


def test_parse_of_str_is_the_identity_for_many_generated_valid_ids() -> None:
    rng = random.Random(20240601)  # fixed seed: a failure is reproducible
    for _ in range(300):
        text = _random_method_text(rng)
        method = MethodId.parse(text)
        service = method.service
        subsystem = service.subsystem
        member = subsystem.member
        gateway = GatewayId.parse(str(subsystem))  # a gateway id has the subsystem's shape
        for value in (method, service, subsystem, member, gateway):
            assert type(value).parse(str(value)) == value, text
        assert str(method) == text


def test_parsed_parts_land_in_the_named_fields() -> None:
    method = MethodId.parse("EE/GOV/70000001/population/population.v1.PersonRegistry/GetPerson")
    assert method.name == "GetPerson"
    assert method.service.grpc_service == "population.v1.PersonRegistry"
    assert method.service.subsystem.name == "population"
    assert method.service.subsystem.member == MemberId("EE", "GOV", "70000001")
    assert GatewayId.parse("EE/GOV/70000001/gw1") == GatewayId(MemberId("EE", "GOV", "70000001"), "gw1")


def test_builders_on_a_parent_id_produce_the_same_value_as_parsing() -> None:
    member = MemberId.parse("EE/GOV/70000001")
    assert member.subsystem("population") == SubsystemId.parse("EE/GOV/70000001/population")
    assert member.gateway("gw1") == GatewayId.parse("EE/GOV/70000001/gw1")
    service = member.subsystem("population").service("population.v1.PersonRegistry")
    assert service == ServiceId.parse("EE/GOV/70000001/population/population.v1.PersonRegistry")
    assert service.method("GetPerson") == MethodId.parse(f"{service}/GetPerson")


def test_member_and_subsystem_uris_use_the_crossway_scheme() -> None:
    assert MemberId.parse("EE/GOV/1").uri == f"{URI_SCHEME}EE/GOV/1"
    assert SubsystemId.parse("EE/GOV/1/tax").uri == "crossway://EE/GOV/1/tax"


def test_grpc_path_is_slash_service_slash_method() -> None:
    method = MethodId.parse("EE/GOV/70000001/population/population.v1.PersonRegistry/GetPerson")
    assert method.grpc_path == "/population.v1.PersonRegistry/GetPerson"


@pytest.mark.parametrize(
    ("cls", "text", "parts", "expected"),
    [
        (MemberId, "EE/GOV", 2, 3),
        (MemberId, "EE/GOV/1/x", 4, 3),
        (SubsystemId, "EE/GOV/1", 3, 4),
        (ServiceId, "EE/GOV/1/sub", 4, 5),
        (ServiceId, "EE/GOV/1/sub/pkg.Svc/Get", 6, 5),
        (GatewayId, "EE/GOV/1/gw/extra", 5, 4),
    ],
)
def test_a_wrong_part_count_names_the_kind_the_count_and_the_expected_form(
    cls: Any, text: str, parts: int, expected: int
) -> None:
    kind = cls.__name__.removesuffix("Id").lower()
    with pytest.raises(InvalidIdentifier) as caught:
        cls.parse(text)
    assert caught.value.message == f"{kind} id {text!r} has {parts} part(s), expected {expected}"
    assert "e.g. EE/GOV/70000001" in caught.value.hint


def test_a_method_id_with_the_wrong_part_count_is_reported_as_a_method_id() -> None:
    text = "EE/GOV/1/sub/pkg.Svc/Get/Extra"
    with pytest.raises(InvalidIdentifier) as caught:
        MethodId.parse(text)
    assert caught.value.message == f"method id {text!r} has 7 part(s), expected 6"


def test_a_method_id_without_any_slash_is_reported_as_a_one_part_method_id() -> None:
    with pytest.raises(InvalidIdentifier, match=r"method id 'GetPerson' has 1 part\(s\), expected 6"):
        MethodId.parse("GetPerson")


@pytest.mark.parametrize(
    ("cls", "text", "what"),
    [
        (MemberId, "EE/GOV/*", "member code"),
        (SubsystemId, "EE/GOV/1/*", "subsystem"),
        (GatewayId, "EE/GOV/1/*", "gateway name"),
        (ServiceId, "EE/GOV/1/sub/pkg.*", "gRPC service"),
        (MethodId, "EE/GOV/1/sub/pkg.Svc/*", "gRPC method"),
        (MemberId, "EE/GOV/70000 001", "member code"),
        (SubsystemId, "EE/GOV/1/pop ulation", "subsystem"),
        (ServiceId, "EE/GOV/1/sub/pkg. Svc", "gRPC service"),
        (MemberId, "ee/GOV/1", "instance"),
        (MemberId, "EE/gov/1", "member class"),
        (SubsystemId, "ee/GOV/1/sub", "instance"),
        (MemberId, "EE/GOV/", "member code"),
        (SubsystemId, "EE/GOV/1/", "subsystem"),
        (MemberId, "EE/GOV/.hidden", "member code"),
        (MethodId, "EE/GOV/1/sub/pkg.Svc/", "gRPC method"),
    ],
)
def test_characters_outside_the_charset_are_rejected_naming_the_part(cls: Any, text: str, what: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        cls.parse(text)
    assert caught.value.message.startswith(f"{what} ")
    assert "outside the allowed set" in caught.value.message
    assert caught.value.hint  # every charset rule has its own hint


def test_a_slash_inside_a_part_changes_the_part_count_and_is_rejected() -> None:
    # '/' is the separator, so "70000/001" cannot be one member code.
    with pytest.raises(InvalidIdentifier, match="has 4 part"):
        MemberId.parse("EE/GOV/70000/001")


@pytest.mark.parametrize(("cls", "text"), KINDS, ids=KIND_IDS)
def test_a_trailing_newline_is_not_part_of_a_valid_id(cls: Any, text: str) -> None:
    with pytest.raises(InvalidIdentifier):
        cls.parse(text + "\n")


def test_an_over_long_instance_is_rejected() -> None:
    with pytest.raises(InvalidIdentifier, match="instance"):
        MemberId.parse(f"{'E' * 33}/GOV/1")
    assert MemberId.parse(f"{'E' * 32}/GOV/1").instance == "E" * 32


@pytest.mark.parametrize(("cls", "text"), KINDS, ids=KIND_IDS)
def test_an_empty_id_is_rejected_with_the_expected_form(cls: Any, text: str) -> None:
    kind = cls.__name__.removesuffix("Id").lower()
    with pytest.raises(InvalidIdentifier) as caught:
        cls.parse("")
    assert kind in caught.value.message
    assert "e.g." in caught.value.hint


@pytest.mark.parametrize(("cls", "text"), KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("value", [None, 42, b"EE/GOV/1"], ids=["None", "int", "bytes"])
def test_a_non_string_is_rejected_as_an_invalid_identifier(cls: Any, text: str, value: object) -> None:
    with pytest.raises(InvalidIdentifier):
        cls.parse(value)


def test_invalid_identifier_is_also_a_value_error_for_callers_outside_crossway() -> None:
    with pytest.raises(ValueError):
        MemberId.parse("nope")


def test_ids_are_frozen_and_ordered() -> None:
    a, b = MemberId.parse("EE/GOV/1"), MemberId.parse("EE/GOV/2")
    assert sorted([b, a]) == [a, b]
    with pytest.raises(AttributeError):
        a.code = "3"  # type: ignore[misc]
