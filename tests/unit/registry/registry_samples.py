"""Sample ids and a descriptor set shared by the registry tests (importable by name, unlike conftest)."""

from __future__ import annotations

from google.protobuf import descriptor_pb2

from crossway.core.ids import GatewayId, MemberId, ServiceId, SubsystemId

PROVIDER = MemberId.parse("EE/GOV/70000001")
CLIENT = MemberId.parse("EE/GOV/70000002")
POPULATION = SubsystemId.parse("EE/GOV/70000001/population")
TAX = SubsystemId.parse("EE/GOV/70000002/tax")
GW1 = GatewayId.parse("EE/GOV/70000001/gw1")
SERVICE = ServiceId.parse("EE/GOV/70000001/population/population.v1.PersonRegistry")


def person_registry_descriptor_set() -> bytes:
    """population.v1.PersonRegistry with one method of each of the four gRPC call kinds."""
    f = descriptor_pb2.FileDescriptorProto(name="population/v1/person.proto", package="population.v1", syntax="proto3")
    for name in ("GetPersonRequest", "Person"):
        f.message_type.add(name=name)
    svc = f.service.add(name="PersonRegistry")
    for name, cs, ss in (
        ("GetPerson", False, False),
        ("ListPeople", False, True),
        ("Upload", True, False),
        ("Chat", True, True),
    ):
        svc.method.add(
            name=name,
            input_type=".population.v1.GetPersonRequest",
            output_type=".population.v1.Person",
            client_streaming=cs,
            server_streaming=ss,
        )
    return descriptor_pb2.FileDescriptorSet(file=[f]).SerializeToString()
