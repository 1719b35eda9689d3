"""gRPC server reflection through the caller's own gateway, like grpcurl (issue 17).

The client is grpcio-reflection's own ProtoReflectionDescriptorDatabase (what grpcurl does in
Go): it lists the services, fetches their files, and the call is then built from nothing but
what reflection said — no generated stubs of the population register.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.message_factory import GetMessageClass
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from audit.trail import fetch_records
from crossway.demo.federation import Federation

pytestmark = pytest.mark.asyncio(loop_scope="module")

PERSON_REGISTRY = "population.v1.PersonRegistry"


def _channel(fed: Federation, token: str | None) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(fed.ca_pem)
    if token is not None:
        credentials = grpc.composite_channel_credentials(credentials, grpc.access_token_call_credentials(token))
    return grpc.secure_channel(fed.tax.client_address, credentials)


def _discover_and_call(fed: Federation) -> tuple[list[str], list[str], Any]:
    """grpcurl list; grpcurl describe population.v1.PersonRegistry; grpcurl -d … GetPerson."""
    with _channel(fed, fed.token()) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = list(database.get_services())
        pool = descriptor_pool.DescriptorPool(database)
        service = pool.FindServiceByName(PERSON_REGISTRY)
        method = service.methods_by_name["GetPerson"]
        request_class = GetMessageClass(method.input_type)
        response_class = GetMessageClass(method.output_type)
        request = request_class()
        request.national_id = "38001010001"
        get_person = channel.unary_unary(
            f"/{PERSON_REGISTRY}/GetPerson",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        person = get_person(request, timeout=10)
        return services, sorted(service.methods_by_name), person


async def test_reflection_lists_describes_and_calls_a_peers_service_through_the_callers_gateway(
    federation: Federation,
) -> None:
    services, methods, person = await asyncio.to_thread(_discover_and_call, federation)
    assert PERSON_REGISTRY in services and "crossway.v1.MetaService" in services
    assert methods == ["Echo", "Export", "GetPerson", "ImportPeople", "ListPeople", "LookupPeople"]
    assert (person.given_name, person.family_name) == ("Mari", "Tamm")


def _v1_list_services(fed: Federation, token: str | None) -> list[str]:
    """The v1 service (grpcurl's first choice) with the same messages as v1alpha."""
    with _channel(fed, token) as channel:
        info = channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        answers = list(info(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10))
    return [s.name for s in answers[0].list_services_response.service]


async def test_reflection_v1_answers_like_v1alpha(federation: Federation) -> None:
    assert PERSON_REGISTRY in await asyncio.to_thread(_v1_list_services, federation, federation.token())


async def test_reflection_without_a_credential_is_refused_like_any_call(federation: Federation) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        await asyncio.to_thread(_v1_list_services, federation, None)
    error: Any = refused.value
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert dict(error.trailing_metadata())["crossway-error"] == "client.unauthenticated"


async def test_who_used_reflection_is_in_the_audit_trail(federation: Federation) -> None:
    await asyncio.to_thread(_v1_list_services, federation, federation.token())
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        records = [r for r in await fetch_records(federation.auditor) if r.service.startswith("grpc.reflection.")]
        if any(r.client == "EE/GOV/70000001/tax" for r in records) or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.2)
    assert any(r.client == "EE/GOV/70000001/tax" and r.method == "ServerReflectionInfo" for r in records)
