"""The admin RPCs the console stands on, over a real gateway: access questions against the live
schema, validate-only and confirmed applies, the gateway's status, and auditors' reads recorded
in the audit log itself (through the audit API, with the auditor's own token)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from audit.index import AuditAuthenticator, open_store
from audit.index.reads import GatewayReadRecorder
from audit.index.server import AuditApi, AuditServer
from audit.trail import AuditRecord, fetch_records, registry_witness_name
from audit.trail.samples import sample_record
from crossway.demo.federation import POPULATION_SERVICE, Federation
from crossway.security.keys import generate_signing_key, save_pem
from crossway.security.tokens import JwtVerifier, mint_token
from protos.crossway.v1 import admin_pb2 as pb
from protos.crossway.v1 import admin_pb2_grpc as pb_grpc
from protos.crossway.v1 import audit_pb2, audit_pb2_grpc
from protos.demo.population.v1.population_pb2 import GetPersonRequest
from protos.demo.population.v1.population_pb2_grpc import PersonRegistryStub
from tests.integration.audit_api import server_certificate

pytestmark = pytest.mark.asyncio(loop_scope="module")

ISSUER = "https://idp.console.example"
ADMIN_AUDIENCE = "crossway-admin"
AUDIT_AUDIENCE = "crossway-audit"
SERVICE = str(POPULATION_SERVICE)
METHOD = f"{SERVICE}/GetPerson"

POLICY = f"""\
@id("tax-assessment-only")
@fields("national_id, given_name, family_name")
@quota("600/min")
permit (
  principal == Crossway::Subsystem::"EE/GOV/70000001/tax",
  action == Crossway::Action::"population.v1.PersonRegistry/GetPerson",
  resource == Crossway::Service::"{SERVICE}"
)
when {{ context.purpose == "tax-assessment" }};
"""


class ConsoleRpcFederation(Federation):
    key = generate_signing_key("ES256")

    def _write_population_gateway(self) -> None:
        super()._write_population_gateway()
        agency = self.population
        save_pem(agency.directory / "admin-idp.pub", self.key.public_key())
        (agency.directory / "policies" / "population.cedar").write_text(POLICY)
        assert agency.config_path is not None
        with agency.config_path.open("a") as f:
            f.write(
                f'\n[admin]\nlisten = "127.0.0.1:0"\nissuer = "{ISSUER}"\n'
                f'audience = "{ADMIN_AUDIENCE}"\npublic_keys = ["admin-idp.pub"]\n'
            )

    def user(self, subject: str, *roles: str) -> str:
        """A console user's token: one token for the admin ports and the audit API."""
        return mint_token(
            self.key,
            subject=subject,
            issuer=ISSUER,
            audience=[ADMIN_AUDIENCE, AUDIT_AUDIENCE],
            extra={"roles": list(roles)},
        )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ConsoleRpcFederation]:
    async with ConsoleRpcFederation(tmp_path_factory.mktemp("console-rpcs")) as federation:
        yield federation


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def admin(fed: ConsoleRpcFederation) -> AsyncIterator[pb_grpc.AdminStub]:
    assert fed.population.process is not None
    match = await fed.population.process.wait_for(r"admin API of \S+ listening on 127\.0\.0\.1:(\d+)")
    channel = grpc.aio.secure_channel(f"127.0.0.1:{match.group(1)}", grpc.ssl_channel_credentials(fed.ca_pem))
    yield pb_grpc.AdminStub(channel)
    await channel.close()


def _md(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def _code(exc: grpc.aio.AioRpcError) -> str:
    return str(dict(exc.trailing_metadata() or ()).get("crossway-error", ""))


async def _records_until(fed: Federation, found: Callable[[list[AuditRecord]], bool]) -> list[AuditRecord]:
    """The stream's records once ``found`` holds (records reach JetStream a moment after submit)."""
    for _ in range(50):
        records = await fetch_records(fed.auditor)
        if found(records):
            return records
        await asyncio.sleep(0.1)
    return records


async def test_an_access_question_is_decided_by_the_policy_in_force_with_its_obligations(
    fed: ConsoleRpcFederation, admin: pb_grpc.AdminStub
) -> None:
    observer = _md(fed.user("watcher@pop", "observer"))  # reading is enough to ask
    question = pb.TestAccessRequest(client="EE/GOV/70000001/tax", method=METHOD, purpose="tax-assessment")
    yes = await admin.TestAccess(question, metadata=observer, timeout=10)
    assert yes.allowed and list(yes.policy_ids) == ["tax-assessment-only"]
    assert yes.summary == "ALLOW  by tax-assessment-only" and yes.policy_version == "v0"
    assert list(yes.fields) == ["family_name", "given_name", "national_id"] and not yes.all_fields
    assert list(yes.quotas) == ["600/min (tax-assessment-only)"]
    question.purpose = "marketing"
    no = await admin.TestAccess(question, metadata=observer, timeout=10)
    assert not no.allowed and no.summary == "DENY   no permit matched"
    # The same question against a proposed set (not applied): every purpose allowed.
    proposed = POLICY.replace('when { context.purpose == "tax-assessment" }', "")
    question.files.append(pb.PolicyFile(name="population.cedar", text=proposed))
    assert (await admin.TestAccess(question, metadata=observer, timeout=10)).allowed
    # The live schema: a method this gateway does not serve, or a typo in the proposal, is an error.
    for bad, code in (
        (pb.TestAccessRequest(client="EE/GOV/70000001/tax", method=f"{SERVICE}/Nope"), "method.unknown"),
        (pb.TestAccessRequest(client="EE/GOV/70000001/tax", method="not a method"), "config.invalid"),
        (
            pb.TestAccessRequest(
                client="EE/GOV/70000001/tax",
                method=METHOD,
                files=[
                    pb.PolicyFile(name="population.cedar", text=POLICY.replace("context.purpose", "context.purpse"))
                ],
            ),
            "policy.invalid",
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await admin.TestAccess(bad, metadata=observer, timeout=10)
        assert _code(refused.value) == code
    assert "population.cedar:9:" in (refused.value.details() or "")  # file:line, as the CLI says it


async def test_validate_only_publishes_nothing_and_a_stale_confirmation_is_a_conflict(
    fed: ConsoleRpcFederation, admin: pb_grpc.AdminStub
) -> None:
    alice = _md(fed.user("alice@pop", "policy-admin"))
    history = await admin.ListPolicyVersions(pb.ListPolicyVersionsRequest(), metadata=alice, timeout=10)
    changed = [pb.PolicyFile(name="population.cedar", text=POLICY.replace("600/min", "300/min"))]
    dry = await admin.ApplyPolicies(
        pb.ApplyPoliciesRequest(files=changed, validate_only=True), metadata=alice, timeout=10
    )
    assert dry.number == history.current + 1 and dry.digest
    after = await admin.ListPolicyVersions(pb.ListPolicyVersionsRequest(), metadata=alice, timeout=10)
    assert after.current == history.current and len(after.versions) == len(history.versions)
    # Confirmed against the version in force: applied. Confirmed against an older one: refused.
    applied = await admin.ApplyPolicies(
        pb.ApplyPoliciesRequest(files=changed, summary="halve the quota", expected_current=history.current),
        metadata=alice,
        timeout=10,
    )
    assert applied.number == history.current + 1
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await admin.RollbackPolicies(
            pb.RollbackPoliciesRequest(number=history.current, expected_current=history.current),
            metadata=alice,
            timeout=10,
        )
    assert stale.value.code() == grpc.StatusCode.ABORTED and _code(stale.value) == "admin.conflict"
    back = await admin.RollbackPolicies(
        pb.RollbackPoliciesRequest(number=history.current, expected_current=applied.number), metadata=alice, timeout=10
    )
    assert back.rollback_of == history.current
    # An observer may not even validate (the same checks as applying: AIP-163).
    with pytest.raises(grpc.aio.AioRpcError) as observer:
        await admin.ApplyPolicies(
            pb.ApplyPoliciesRequest(files=changed, validate_only=True),
            metadata=_md(fed.user("watcher@pop", "observer")),
            timeout=10,
        )
    assert _code(observer.value) == "admin.forbidden"


async def test_the_status_shows_health_registry_policy_audit_certificates_and_nats(
    fed: ConsoleRpcFederation, admin: pb_grpc.AdminStub
) -> None:
    # One exchange of its own, so the provider's log has records whatever ran before this test.
    async with fed.channel() as channel:
        await PersonRegistryStub(channel).GetPerson(
            GetPersonRequest(national_id="38001010001"),
            metadata=(("authorization", f"Bearer {fed.token()}"), ("crossway-purpose", "tax-assessment")),
            timeout=10,
        )
    observer = _md(fed.user("ops@pop", "observer"))
    for _ in range(100):  # the first checkpoint: one interval after the first record, longer on a loaded host
        status = await admin.GetStatus(pb.GetStatusRequest(), metadata=observer, timeout=10)
        if status.checkpoint_size > 0:
            break
        await asyncio.sleep(0.2)
    assert status.gateway == "EE/GOV/70000002/gw1"
    health = {h.name: h.status for h in status.health}
    assert health[""] == "SERVING" and health["crossway.policy"] == "SERVING" and SERVICE in health
    assert status.registry_serial >= 1 and status.registry_expires_at_ms > status.now_ms
    assert status.policy_version >= 0 and status.audit_spooled == 0
    assert status.log_size >= status.checkpoint_size > 0  # the exchange above is in the log
    kinds = {c.kind: c for c in status.certificates}
    assert set(kinds) == {"tls", "signing"} and kinds["tls"].not_after_ms > status.now_ms
    assert kinds["tls"].subject.startswith("crossway") and len(kinds["signing"].fingerprint) == 64
    assert {n.name: n.state for n in status.nats} == {
        "audit": "connected",
        "registry": "connected",
        "policies": "connected",
    }
    assert all(n.server.startswith("127.0.0.1:") for n in status.nats)


async def test_only_an_auditor_has_reads_recorded_and_only_in_their_own_name(
    fed: ConsoleRpcFederation, admin: pb_grpc.AdminStub
) -> None:
    read = pb.RecordAuditReadRequest(action="Query", detail='{"client":"EE/GOV/70000001/tax"}', source="test")
    answer = await admin.RecordAuditRead(read, metadata=_md(fed.user("carol@audit", "auditor")), timeout=10)
    assert answer.message_id == f"audit-read:EE/GOV/70000002/gw1:{answer.record_id}"
    for token, code in ((fed.user("alice@pop", "policy-admin"), "admin.forbidden"), ("x.y.z", "admin.unauthenticated")):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await admin.RecordAuditRead(read, metadata=_md(token), timeout=10)
        assert _code(refused.value) == code
    with pytest.raises(grpc.aio.AioRpcError) as odd:
        await admin.RecordAuditRead(
            pb.RecordAuditReadRequest(action="DropTable"), metadata=_md(fed.user("carol@audit", "auditor")), timeout=10
        )
    assert _code(odd.value) == "audit.bad_request"
    records = await _records_until(fed, lambda rs: any(r.message_id == answer.message_id for r in rs))
    mine = [r for r in records if r.message_id == answer.message_id]
    assert len(mine) == 1 and mine[0].side == "auditor" and mine[0].client == "carol@audit"
    assert mine[0].method == "Query" and mine[0].purpose == read.detail and mine[0].gateway == "EE/GOV/70000002/gw1"


async def test_the_audit_api_records_each_read_through_the_gateway_before_answering(
    fed: ConsoleRpcFederation, admin: pb_grpc.AdminStub, tmp_path: Path
) -> None:
    assert fed.population.process is not None
    port = (await fed.population.process.wait_for(r"admin API of \S+ listening on 127\.0\.0\.1:(\d+)")).group(1)
    index = str(tmp_path / "index.sqlite")
    store = open_store(index)
    store.ingest("records", [(1, "EE/GOV/70000001/gw1", sample_record(1).to_json())], {})
    store.close()
    key, cert = server_certificate(tmp_path)
    verifier = JwtVerifier(issuer=ISSUER, audience=AUDIT_AUDIENCE, public_keys=[fed.key.public_key()])
    assert fed.authority is not None
    anchor = fed.authority.anchor.public_key
    recorder = GatewayReadRecorder(f"127.0.0.1:{port}", fed.ca_pem, source="audit api test")
    # Witnesses by key name (C2SP): the registry's is crossway.registry/<instance>.
    witnesses = {registry_witness_name(fed.authority.anchor.instance): anchor}
    api = AuditApi(index, AuditAuthenticator(verifier), witnesses, reads=recorder)
    server = AuditServer(api, "127.0.0.1:0", key.read_bytes(), cert.read_bytes())
    await server.start()
    try:
        channel = grpc.aio.secure_channel(f"127.0.0.1:{server.port}", grpc.ssl_channel_credentials(cert.read_bytes()))
        stub = audit_pb2_grpc.AuditStub(channel)
        query = audit_pb2.AuditQueryRequest(filters=audit_pb2.AuditFilters(client="EE/COM/12345678/tax"))
        entries = [e async for e in stub.Query(query, metadata=_md(fed.user("dave@audit", "auditor")), timeout=10)]
        assert len(entries) == 1
        # An auditor the gateway does not accept (here: no auditor role there) gets no answer at all.
        with pytest.raises(grpc.aio.AioRpcError) as unrecorded:
            other = mint_token(
                fed.key, subject="eve", issuer=ISSUER, audience=AUDIT_AUDIENCE, extra={"roles": ["auditor"]}
            )
            _ = [e async for e in stub.Query(query, metadata=_md(other), timeout=10)]
        assert _code(unrecorded.value) == "audit.forbidden"
        await channel.close()
    finally:
        await server.aclose()
    records = await _records_until(fed, lambda rs: any(r.client == "dave@audit" for r in rs))
    reads = [r for r in records if r.side == "auditor" and r.client == "dave@audit"]
    assert len(reads) == 1 and reads[0].peer_gateway == "audit api test"
    assert json.loads(reads[0].purpose) == {"client": "EE/COM/12345678/tax"}
