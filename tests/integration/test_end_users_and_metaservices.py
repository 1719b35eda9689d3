"""Issue 3, the data path's last parts over real gateways: end-user tokens signed by the calling
agency (verified by the provider against the registry's keys before policy sees a claim), and
the metaservices (list clients, list methods, allowed methods, service descriptor)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from google.protobuf import descriptor_pb2
from nats.js.errors import NotFoundError

from audit.trail import AuditRecord, fetch_records
from crossway.demo.federation import POPULATION_SERVICE, TAX, Federation
from crossway.security.keys import generate_signing_key
from protos.crossway.v1 import meta_pb2, meta_pb2_grpc
from protos.demo.population.v1 import population_pb2 as pb
from protos.demo.population.v1 import population_pb2_grpc as pb_grpc

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVICE = str(POPULATION_SERVICE)
OFFICER_CHECK = "officer-check"

# The tax subsystem may use the register; for the purpose "officer-check" only on behalf of an
# end user whose *verified* role claim says tax officer. Marketing has no permit at all.
POLICY = f"""\
@id("tax-uses-population-register")
permit (
  principal == Crossway::Subsystem::"EE/GOV/70000001/tax",
  action in Crossway::Action::"population.v1.PersonRegistry/*",
  resource == Crossway::Service::"{SERVICE}"
)
when {{ context.purpose != "{OFFICER_CHECK}" }};

@id("officers-check-people")
permit (
  principal == Crossway::Subsystem::"EE/GOV/70000001/tax",
  action == Crossway::Action::"population.v1.PersonRegistry/GetPerson",
  resource == Crossway::Service::"{SERVICE}"
)
when {{
  context.purpose == "{OFFICER_CHECK}" &&
  context.user.hasTag("role") && context.user.getTag("role") == "tax-officer"
}};
"""


class EndUserFederation(Federation):
    def _write_population_gateway(self) -> None:
        super()._write_population_gateway()
        (self.population.directory / "policies" / "population.cedar").write_text(POLICY)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def federation(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    async with EndUserFederation(tmp_path_factory.mktemp("end-users"), span_flush_ms=200) as fed:
        yield fed


async def _records_for(fed: Federation, message_id: str, expected: int, timeout: float = 10.0) -> list[AuditRecord]:
    """One exchange's audit records, read back from JetStream (they arrive off the call path)."""
    deadline = asyncio.get_running_loop().time() + timeout
    records: list[AuditRecord] = []
    while len(records) < expected and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
        with contextlib.suppress(NotFoundError):  # the stream appears with the first record
            records = [r for r in await fetch_records(fed.auditor) if r.message_id == message_id]
    return records


def _code(exc: grpc.aio.AioRpcError) -> str:
    return str(dict(exc.trailing_metadata() or ()).get("crossway-error", ""))


async def _get_person(fed: Federation, *metadata: tuple[str, str]) -> tuple[pb.Person, str]:
    async with fed.channel() as channel:
        call = pb_grpc.PersonRegistryStub(channel).GetPerson(
            pb.GetPersonRequest(national_id="38001010001"),
            metadata=(("authorization", f"Bearer {fed.token()}"), ("crossway-purpose", OFFICER_CHECK), *metadata),
            timeout=10,
        )
        person: pb.Person = await call
        trailing = dict(await call.trailing_metadata() or ())
        return person, str(trailing.get("crossway-message-id", ""))


async def _refused(fed: Federation, *metadata: tuple[str, str]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _get_person(fed, *metadata)
    return info.value


# -- end-user tokens ---------------------------------------------------------------------------


async def test_a_verified_end_user_claim_lets_the_policy_allow_and_the_audit_keeps_the_user_not_the_token(
    federation: Federation,
) -> None:
    token = federation.user_token("EE38001010000", claims={"role": "tax-officer", "loa": 3})
    person, message_id = await _get_person(federation, ("crossway-user-token", token))
    assert person.national_id == "38001010001"
    # The same claim without a token is only a bare user id: allowed to travel, trusted by no policy.
    denied = await _refused(federation, ("crossway-user-id", "EE38001010000"))
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED and _code(denied) == "policy.denied"
    # A verified token whose claim says something else: the policy sees it and says no.
    clerk = federation.user_token("EE38001010000", claims={"role": "clerk"})
    assert _code(await _refused(federation, ("crossway-user-token", clerk))) == "policy.denied"

    records = await _records_for(federation, message_id, 2)
    provider = [r for r in records if r.side == "provider"]
    assert provider and provider[0].user_id == "EE38001010000"
    assert provider[0].decision == "allow" and provider[0].policy_ids == ("officers-check-people",)
    assert all(token not in repr(r) for r in records)


@pytest.mark.parametrize(
    "case",
    ["unregistered key", "expired", "another audience", "a user id that is not the subject", "garbage"],
)
async def test_an_unverifiable_end_user_token_is_refused_with_user_token_invalid(
    federation: Federation, case: str
) -> None:
    claims = {"role": "tax-officer"}
    metadata: list[tuple[str, str]] = []
    if case == "unregistered key":
        token = federation.user_token("EE1", claims=claims, key=generate_signing_key("ES256"))
    elif case == "expired":
        token = federation.user_token("EE1", claims=claims, ttl_s=-120)  # beyond the 30 s leeway
    elif case == "another audience":
        token = federation.user_token("EE1", claims=claims, audience="EE/GOV/70000003")
    elif case == "a user id that is not the subject":
        token = federation.user_token("EE1", claims=claims)
        metadata.append(("crossway-user-id", "EE2"))
    else:
        token = "not.a-jwt.at-all"
    refused = await _refused(federation, ("crossway-user-token", token), *metadata)
    assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
    assert _code(refused) == "policy.user_token_invalid"
    details = refused.details() or ""
    assert details.startswith("provider gateway: policy.user_token_invalid") and token not in details
    for agency in (federation.tax, federation.population):  # never in a log line either
        assert agency.process is not None and not any(token in line for line in agency.process.lines)


async def test_a_token_from_a_member_without_registered_keys_is_refused(federation: Federation) -> None:
    assert federation.authority is not None
    key_id = next(k.key_id for k in federation.authority.store.user_token_keys(TAX))
    federation.authority.remove_user_token_key(TAX, key_id)
    await federation.publish_and_wait()
    try:
        refused = await _refused(federation, ("crossway-user-token", federation.user_token("EE1")))
        assert _code(refused) == "policy.user_token_invalid" and "registered no user-token key" in (
            refused.details() or ""
        )
    finally:
        public = federation.user_token_key.public_key()
        from cryptography.hazmat.primitives import serialization

        federation.authority.add_user_token_key(
            TAX, public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        await federation.publish_and_wait()


# -- metaservices --------------------------------------------------------------------------------


def _tax_md(fed: Federation) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {fed.token()}"),)


async def test_list_clients_names_every_subsystem_of_the_federation(federation: Federation) -> None:
    async with federation.channel() as channel:
        answer = await meta_pb2_grpc.MetaServiceStub(channel).ListClients(
            meta_pb2.ListClientsRequest(), metadata=_tax_md(federation), timeout=10
        )
    ids = {c.id for c in answer.clients}
    assert {"EE/GOV/70000001/tax", "EE/GOV/70000001/marketing", "EE/GOV/70000002/population"} <= ids
    tax = next(c for c in answer.clients if c.id == "EE/GOV/70000001/tax")
    assert (tax.member, tax.member_name) == ("EE/GOV/70000001", "Tax and Customs Board")


async def test_list_methods_and_the_descriptor_come_from_the_registry(federation: Federation) -> None:
    async with federation.channel() as channel:
        stub = meta_pb2_grpc.MetaServiceStub(channel)
        # By gRPC name (one provider offers it) or by full id: the same service.
        methods = await stub.ListMethods(
            meta_pb2.ServiceRequest(service="population.v1.PersonRegistry"), metadata=_tax_md(federation), timeout=10
        )
        described = await stub.GetServiceDescription(
            meta_pb2.ServiceRequest(service=SERVICE), metadata=_tax_md(federation), timeout=10
        )
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await stub.ListMethods(meta_pb2.ServiceRequest(service="nope.v1.Nothing"), metadata=_tax_md(federation))
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await stub.ListClients(meta_pb2.ListClientsRequest(), timeout=10)
    assert methods.service == SERVICE
    by_name = {m.name: m for m in methods.methods}
    assert set(by_name) == {"GetPerson", "ListPeople", "ImportPeople", "LookupPeople", "Export", "Echo"}
    assert by_name["ListPeople"].server_streaming and not by_name["ListPeople"].client_streaming
    assert by_name["GetPerson"].input_type == "population.v1.GetPersonRequest"
    fds = descriptor_pb2.FileDescriptorSet.FromString(described.file_descriptor_set)
    assert any(s.name == "PersonRegistry" for f in fds.file for s in f.service)
    assert _code(unknown.value) == "service.unknown"
    assert _code(anonymous.value) == "client.unauthenticated"


async def test_allowed_methods_are_decided_by_the_provider_for_each_calling_subsystem(
    federation: Federation,
) -> None:
    request = meta_pb2.ServiceRequest(service=SERVICE)
    async with federation.channel() as channel:
        call = meta_pb2_grpc.MetaServiceStub(channel).AllowedMethods(request, metadata=_tax_md(federation), timeout=10)
        tax = await call
        message_id = dict(await call.trailing_metadata() or ()).get("crossway-message-id")
        officer = await meta_pb2_grpc.MetaServiceStub(channel).AllowedMethods(
            request,
            metadata=(
                *_tax_md(federation),
                ("crossway-purpose", OFFICER_CHECK),
                ("crossway-user-token", federation.user_token("EE3", claims={"role": "tax-officer"})),
            ),
            timeout=10,
        )
    async with federation.marketing_channel() as channel:
        marketing = await meta_pb2_grpc.MetaServiceStub(channel).AllowedMethods(request, timeout=10)
    assert tax.service == SERVICE and tax.policy_version
    assert {m.name for m in tax.methods} == {
        "GetPerson",
        "ListPeople",
        "ImportPeople",
        "LookupPeople",
        "Export",
        "Echo",
    }
    assert [m.name for m in officer.methods] == ["GetPerson"]  # the purpose and the claim count too
    assert not marketing.methods  # deny by default: marketing has no permit

    # A signed exchange, audited on both sides like any other (records arrive off the call path).
    records = await _records_for(federation, str(message_id), 2)
    assert {r.side for r in records} == {"client", "provider"}
    for record in records:
        assert record.method == "crossway.v1.MetaService/AllowedMethods" and record.service == SERVICE
        assert record.client == "EE/GOV/70000001/tax" and record.request_signature and record.response_signature
