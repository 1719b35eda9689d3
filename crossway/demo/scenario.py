"""The demo scenario: what a newcomer sees the federation do, each outcome checked.

Every call goes from an agency system of "tax" through its own gateway and the provider's
gateway, with the provider's own generated stubs: to the population register's gRPC backend and,
when the federation has it, to the business register, whose backend is an SAP system (a SAP CAP
OData V2 server) reached through the SAP adapter (issue 5).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import grpc

from audit.trail import count_stream_records
from crossway.demo.business import BUSINESS_SERVICE
from crossway.demo.federation import MARKETING_SUBSYSTEM, Federation
from gateway.wire.metadata import metadata_text
from protos.demo.business.v1 import business_pb2 as business_pb
from protos.demo.business.v1 import business_pb2_grpc as business_grpc
from protos.demo.population.v1 import population_pb2 as pb
from protos.demo.population.v1 import population_pb2_grpc as pb_grpc

__all__ = ["ScenarioResult", "run_scenario"]

TALLINNA_VESI = "0f8fad5b-d9cb-469f-a165-70867728950e"  # a company in the CAP project's seed data


@dataclass(slots=True)
class ScenarioResult:
    exchanges: int = 0
    allowed: int = 0
    denied: int = 0
    records: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and self.records == 2 * self.exchanges

    def summary(self) -> str:
        return (
            f"demo: {self.exchanges} exchanges, {self.allowed} allowed, {self.denied} denied, "
            f"{self.records} audit records"
        )


def _code(exc: grpc.aio.AioRpcError) -> str:
    return metadata_text(exc.trailing_metadata()).get("crossway-error", "")


async def run_scenario(fed: Federation, say: Callable[[str], None] = print) -> ScenarioResult:
    result = ScenarioResult()
    token = fed.token()
    tax_md = (
        ("authorization", f"Bearer {token}"),
        ("crossway-purpose", "tax-assessment"),
        ("crossway-user-id", "EE38001010001"),
    )

    async def step(title: str, expect_allowed: bool, action: Callable[[], Awaitable[str]]) -> None:
        result.exchanges += 1
        try:
            outcome = await action()
        except grpc.aio.AioRpcError as exc:
            code = _code(exc)
            if not expect_allowed and code == "policy.denied":
                result.denied += 1
                say(f"  ✔ {title}: refused — {exc.code().name} {code}: {exc.details()}")
                return
            result.failures.append(f"{title}: {exc.code().name} {code} {exc.details()}")
            say(f"  ✘ {title}: {exc.code().name} {code}: {exc.details()}")
            return
        if expect_allowed:
            result.allowed += 1
            say(f"  ✔ {title}: {outcome}")
        else:
            result.failures.append(f"{title}: expected a refusal, got {outcome}")
            say(f"  ✘ {title}: expected a refusal, got {outcome}")

    async with fed.channel() as channel, fed.marketing_channel() as marketing:
        stub = pb_grpc.PersonRegistryStub(channel)

        async def get_person() -> str:
            call = stub.GetPerson(pb.GetPersonRequest(national_id="38001010001"), metadata=tax_md, timeout=10)
            person = await call
            message_id = metadata_text(await call.trailing_metadata()).get("crossway-message-id", "?")
            return f"{person.given_name} {person.family_name}, {person.address} (message {message_id})"

        async def list_people() -> str:
            names = [
                p.given_name
                async for p in stub.ListPeople(pb.ListPeopleRequest(family_name="Tamm"), metadata=tax_md, timeout=10)
            ]
            return f"{len(names)} people named Tamm: {', '.join(names)}"

        async def import_people() -> str:
            async def people() -> AsyncIterator[pb.Person]:
                for i in range(3):
                    yield pb.Person(national_id=f"5000000000{i}", given_name=f"New{i}")

            summary = await stub.ImportPeople(people(), metadata=tax_md, timeout=10)
            return f"backend received {summary.received} people"

        async def lookup_people() -> str:
            async def ids() -> AsyncIterator[pb.GetPersonRequest]:
                for national_id in ("48503030003", "39002020002"):
                    yield pb.GetPersonRequest(national_id=national_id)

            names = [p.given_name async for p in stub.LookupPeople(ids(), metadata=tax_md, timeout=10)]
            return f"looked up {', '.join(names)} over one bidirectional stream"

        async def marketing_reads() -> str:
            m_stub = pb_grpc.PersonRegistryStub(marketing)
            person = await m_stub.GetPerson(pb.GetPersonRequest(national_id="38001010001"), timeout=10)
            return f"got {person.given_name}"

        say("Agency 'tax' calls the population register through both gateways (signed, encrypted, authorized):")
        await step("unary GetPerson", True, get_person)
        await step("server-streaming ListPeople", True, list_people)
        await step("client-streaming ImportPeople", True, import_people)
        await step("bidirectional LookupPeople", True, lookup_people)
        if fed.business is not None:
            # Two subsystems of the business register offer the service: name the provider.
            business_md = (*tax_md, ("crossway-service", str(BUSINESS_SERVICE.subsystem)))
            business = business_grpc.BusinessRegisterStub(channel)

            async def get_company() -> str:
                request = business_pb.GetCompanyRequest(id=TALLINNA_VESI)
                company = await business.GetCompany(request, metadata=business_md, timeout=10)
                return (
                    f"{company.name}, registry code {company.registry_code}, share capital {company.share_capital} EUR"
                )

            async def list_companies() -> str:
                request = business_pb.ListCompaniesRequest(city="Tallinn", status="ACTIVE")
                page = await business.ListCompanies(request, metadata=business_md, timeout=10)
                names = sorted(c.name for c in page.companies)
                return f"{len(names)} active companies in Tallinn: {', '.join(names)}"

            say("Agency 'tax' calls the business register, backed by SAP (OData V2), through both gateways:")
            await step("GetCompany → SAP read by key", True, get_company)
            await step("ListCompanies → SAP query with $filter", True, list_companies)
        say(f"Subsystem {MARKETING_SUBSYSTEM} (client certificate) has no permitting policy:")
        await step("marketing GetPerson", False, marketing_reads)

    # Both sides of every exchange, denied ones included, counted in the stream itself.
    expected = 2 * result.exchanges
    deadline = time.monotonic() + 15
    while True:
        result.records = await count_stream_records(fed.auditor)
        if result.records >= expected or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    mark = "✔" if result.records == expected else "✘"
    say(f"  {mark} audit: {result.records} records in JetStream (expected {expected}: both sides of each exchange)")
    return result
