"""Registered delivery between two real gateways over real NATS: evidence at every step, both sides.

The tax board's system sends; the population register's mailbox receives (see delivery_support).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from delivery_support import (
    CONSENT_BOX,
    MAILBOX,
    PUSH_BOX,
    Mail,
    delivery_federation,
    indexed_and_cosigned,
    population_mail,
    tax_mail,
)

from audit.index.delivery_evidence import verify_delivery_evidence
from audit.trail import (
    AuditRecord,
    EvidenceInvalid,
    fetch_records,
    registry_witness_name,
    verify_timeline_bundle,
)
from crossway.core.ids import SubsystemId
from crossway.demo.federation import TAX_SUBSYSTEM, Federation
from gateway.delivery.convert import event_from_pb
from gateway.wire.metadata import metadata_text
from protos.crossway.v1 import delivery_pb2 as dpb
from protos.demo.population.v1 import population_pb2 as population_pb
from registry import load_anchor

pytestmark = pytest.mark.asyncio(loop_scope="module")

TAX = str(TAX_SUBSYSTEM)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    workdir: Path = tmp_path_factory.mktemp("delivery")
    async with delivery_federation(workdir) as federation:
        yield federation


@pytest_asyncio.fixture(loop_scope="module")
async def tax(fed: Federation) -> AsyncIterator[Mail]:
    mail = tax_mail(fed)
    yield mail
    await mail.close()


@pytest_asyncio.fixture(loop_scope="module")
async def population(fed: Federation) -> AsyncIterator[Mail]:
    mail = population_mail(fed)
    yield mail
    await mail.close()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.2)


async def wait_for_event(mail: Mail, message_id: str, event: str, timeout: float = 20.0) -> list[str]:
    names: list[str] = []

    async def seen() -> bool:
        nonlocal names
        names = await mail.names(TAX, message_id)
        return event in names

    await eventually(seen, timeout)
    return names


async def receive_one(mail: Mail, message_id: str, timeout: float = 20.0) -> dpb.DeliveredMessage:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in await mail.receive(wait_ms=1000):
            if message.ref.message_id == message_id:
                return message
    raise AssertionError(f"{message_id} was not received")


async def test_a_message_is_relayed_handed_over_and_both_timelines_agree(tax: Mail, population: Mail) -> None:
    response = await tax.send("notice-1", b"court date: 2025-03-01")
    submitted = event_from_pb(response.evidence)
    assert not response.HasField("refusal") and submitted.event.event == "SubmissionAcceptance"
    await wait_for_event(tax, "notice-1", "RelayAcceptance")
    message = await receive_one(population, "notice-1")
    assert message.payload == b"court date: 2025-03-01" and message.ref.sender == TAX
    handover = await population.ack(TAX, "notice-1")
    assert handover.event.event == "ContentHandover"
    names = await wait_for_event(tax, "notice-1", "ContentHandover")
    assert names == ["SubmissionAcceptance", "RelayAcceptance", "ContentHandover"]
    sender_side = await tax.timeline(TAX, "notice-1")
    recipient_side = await population.timeline(TAX, "notice-1")
    assert [e.data for e in sender_side] == [e.data for e in recipient_side]
    # Each event names the one before it, and was signed by the gateway that saw it.
    assert [e.event.previous for e in sender_side] == ["", sender_side[0].hash, sender_side[1].hash]
    assert [e.event.issuer for e in sender_side] == [
        "EE/GOV/70000001/gw1",
        "EE/GOV/70000002/gw1",
        "EE/GOV/70000002/gw1",
    ]
    # Acknowledging again gives the same evidence, not a second handover.
    assert (await population.ack(TAX, "notice-1")).data == handover.data


async def test_the_evidence_bundle_of_a_message_verifies_offline(fed: Federation, tax: Mail, population: Mail) -> None:
    await tax.send("notice-bundle")
    await receive_one(population, "notice-bundle")
    await population.ack(TAX, "notice-bundle")
    await wait_for_event(tax, "notice-bundle", "ContentHandover")
    reply = await tax.stub.Evidence(dpb.MessageRef(sender=TAX, message_id="notice-bundle"), metadata=tax.md)
    assert fed.authority is not None
    report = verify_timeline_bundle(reply.bundle, fed.authority.anchor.ca_sha256)
    assert [e.event.event for e in report.events] == ["SubmissionAcceptance", "RelayAcceptance", "ContentHandover"]
    assert report.ca_pinned


async def test_a_duplicate_send_returns_the_original_evidence_and_nothing_is_delivered_twice(
    tax: Mail, population: Mail
) -> None:
    first = await tax.send("notice-dup", b"once")
    await receive_one(population, "notice-dup")
    await population.ack(TAX, "notice-dup")
    again = await tax.send("notice-dup", b"once")
    assert again.duplicate and again.evidence == first.evidence
    assert [m.ref.message_id for m in await population.receive(wait_ms=1500)] == []
    names = await wait_for_event(tax, "notice-dup", "ContentHandover")
    assert names.count("SubmissionAcceptance") == 1 and names.count("ContentHandover") == 1


async def test_a_policy_refusal_is_a_relay_rejection_naming_the_deciding_policy_and_nothing_is_handed_over(
    tax: Mail, population: Mail
) -> None:
    await tax.send("ad-1", b"buy now", purpose="marketing")
    names = await wait_for_event(tax, "ad-1", "RelayRejection")
    assert names == ["SubmissionAcceptance", "RelayRejection"]
    rejection = (await tax.timeline(TAX, "ad-1"))[-1].event
    assert rejection.reason_code == "policy.denied" and "no-marketing-mail" in rejection.reason
    assert [m.ref.message_id for m in await population.receive(wait_ms=1000)] == []
    assert await population.names(TAX, "ad-1") == names


async def test_an_unread_message_expires_with_the_expiry_event_on_both_sides(tax: Mail, population: Mail) -> None:
    await tax.send("notice-late", expires_in_s=3)
    await wait_for_event(tax, "notice-late", "RelayAcceptance")
    names = await wait_for_event(tax, "notice-late", "ContentHandoverFailure", timeout=30)
    assert names == ["SubmissionAcceptance", "RelayAcceptance", "ContentHandoverFailure"]
    assert await population.names(TAX, "notice-late") == names
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await population.ack(TAX, "notice-late")
    assert metadata_text(refused.value.trailing_metadata())["crossway-error"] in (
        "delivery.expired",
        "delivery.conflict",
    )


async def test_a_submission_the_registry_cannot_place_is_refused_with_signed_evidence(tax: Mail) -> None:
    response = await tax.send("nowhere-1", recipient=SubsystemId.parse("EE/GOV/70000001/marketing"))
    assert response.refusal.error_code == "mailbox.unknown"
    assert event_from_pb(response.evidence).event.event == "SubmissionRejection"
    response = await tax.send("pdf-as-image", content_type="image/png")
    assert response.refusal.error_code == "message.type_refused"


async def test_accept_and_reject_are_evidence_and_an_undecided_message_expires_on_both_sides(
    fed: Federation, tax: Mail
) -> None:
    inbox = population_mail(fed, CONSENT_BOX)
    try:
        for message_id in ("consent-yes", "consent-no", "consent-none"):
            await tax.send(message_id, recipient=CONSENT_BOX)
        waiting = {"consent-yes", "consent-no", "consent-none"}
        deadline = time.monotonic() + 20
        while waiting:
            assert time.monotonic() < deadline, f"not received: {waiting}"
            for message in await inbox.receive(wait_ms=1000):
                await inbox.ack(TAX, message.ref.message_id)
                waiting.discard(message.ref.message_id)
        ref = dpb.ConsentRequest(message=dpb.MessageRef(sender=TAX, message_id="consent-yes"))
        await inbox.stub.Accept(ref, metadata=inbox.md)
        ref = dpb.ConsentRequest(message=dpb.MessageRef(sender=TAX, message_id="consent-no"), reason="wrong court")
        await inbox.stub.Reject(ref, metadata=inbox.md)
        assert (await wait_for_event(tax, "consent-yes", "ConsignmentAcceptance"))[-1] == "ConsignmentAcceptance"
        assert (await wait_for_event(tax, "consent-no", "ConsignmentRejection"))[-1] == "ConsignmentRejection"
        rejected = (await tax.timeline(TAX, "consent-no"))[-1].event
        assert rejected.reason == "wrong court"
        names = await wait_for_event(tax, "consent-none", "AcceptanceRejectionExpiry", timeout=30)
        assert names == ["SubmissionAcceptance", "RelayAcceptance", "ContentHandover", "AcceptanceRejectionExpiry"]
        assert await inbox.names(TAX, "consent-none") == names
    finally:
        await inbox.close()


async def test_only_the_sender_and_the_recipient_see_a_message(fed: Federation, tax: Mail) -> None:
    await tax.send("private-1")
    marketing = Mail(fed, fed.tax, SubsystemId.parse("EE/GOV/70000001/marketing"))
    try:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await marketing.timeline(TAX, "private-1")
        assert metadata_text(refused.value.trailing_metadata())["crossway-error"] == "delivery.unknown"
    finally:
        await marketing.close()


async def test_every_event_is_in_both_gateways_audit_logs(fed: Federation, tax: Mail, population: Mail) -> None:
    await tax.send("logged-1")
    await receive_one(population, "logged-1")
    await population.ack(TAX, "logged-1")
    await wait_for_event(tax, "logged-1", "ContentHandover")

    async def both_logged() -> bool:
        records: list[AuditRecord] = await fetch_records(fed.auditor)
        mine = [r for r in records if r.side == "delivery" and r.message_id == f"{TAX}/logged-1"]
        by_gateway = {g: sorted(r.method for r in mine if r.gateway == g) for g in {r.gateway for r in mine}}
        want = sorted(["SubmissionAcceptance", "RelayAcceptance", "ContentHandover"])
        return by_gateway == {"EE/GOV/70000001/gw1": want, "EE/GOV/70000002/gw1": want}

    await eventually(both_logged)


async def test_a_mailbox_that_is_not_the_callers_cannot_be_read(fed: Federation) -> None:
    marketing_at_population = Mail(fed, fed.population, SubsystemId.parse("EE/GOV/70000002/nobody"))
    try:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await marketing_at_population.receive(wait_ms=100)
        assert refused.value.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND)
    finally:
        await marketing_at_population.close()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crossway.cli", "audit", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
async def test_the_auditors_bundle_proves_every_event_in_both_logs_and_any_changed_byte_fails(
    fed: Federation, tax: Mail, population: Mail, tmp_path: Path
) -> None:
    await tax.send("proven-1")
    await receive_one(population, "proven-1")
    await population.ack(TAX, "proven-1")
    await wait_for_event(tax, "proven-1", "ContentHandover")
    await asyncio.sleep(1.5)  # the sender's gateway logs the recipient's events when they arrive
    index = str(tmp_path / "audit.sqlite")
    await indexed_and_cosigned(fed, index)
    anchor = str(fed.workdir / "registry" / "anchor.json")
    bundle = tmp_path / "delivery-evidence.json"
    made = _cli("evidence", f"{TAX}/proven-1", "--index", index, "--anchor", anchor, "-o", str(bundle))
    assert made.returncode == 0, made.stderr
    checked = _cli("verify-evidence", str(bundle), "--anchor", anchor)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "3 event(s)" in checked.stdout and "both gateways' logs hold the whole timeline" in checked.stdout
    data = bundle.read_bytes()
    loaded = load_anchor(Path(anchor))
    key = {registry_witness_name(loaded.instance): loaded.public_key}
    report = verify_delivery_evidence(data, key)
    assert [e.event.event for e in report.events] == ["SubmissionAcceptance", "RelayAcceptance", "ContentHandover"]
    for position in range(0, len(data), 3):  # every position of a small bundle: tests/unit/audit
        altered = bytearray(data)
        altered[position] ^= 0x01
        with pytest.raises(EvidenceInvalid):
            verify_delivery_evidence(bytes(altered), key)
    bundle.write_bytes(data[:-2] + b" \n")
    assert _cli("verify-evidence", str(bundle), "--anchor", anchor).returncode == 1


def _profile(fed: Federation, directory: Path, mail: Mail) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "client.port").write_text(str(mail._agency.client_port))
    (directory / "ca.pem").write_bytes(fed.ca_pem)
    (directory / "token.jwt").write_text(dict(mail.md)["authorization"].split(" ", 1)[1])
    return directory


def _mail(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crossway.cli", "mail", "--profile", str(profile), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_mail_cli_sends_receives_follows_exports_and_reports(
    fed: Federation, tax: Mail, population: Mail, tmp_path: Path
) -> None:
    court, registry = _profile(fed, tmp_path / "tax", tax), _profile(fed, tmp_path / "population", population)
    note = tmp_path / "note.txt"
    note.write_text("please appear on 1 March")
    sent = await asyncio.to_thread(
        _mail,
        court,
        "send",
        str(MAILBOX),
        "--id",
        "cli-1",
        "--file",
        str(note),
        "--purpose",
        "notice",
        "--expires-in",
        "10m",
    )
    assert sent.returncode == 0, sent.stderr
    assert "SubmissionAcceptance" in sent.stdout
    await wait_for_event(tax, "cli-1", "RelayAcceptance")
    inbox = tmp_path / "inbox"
    received = await asyncio.to_thread(_mail, registry, "receive", "--save-dir", str(inbox), "--wait", "3s")
    assert received.returncode == 0, received.stderr
    assert "ContentHandover" in received.stdout
    assert (inbox / f"{TAX.replace('/', '_')}__cli-1").read_text() == "please appear on 1 March"
    await wait_for_event(tax, "cli-1", "ContentHandover")
    timeline = await asyncio.to_thread(_mail, court, "timeline", TAX, "cli-1")
    lines = timeline.stdout.splitlines()
    assert [line.split()[2] for line in lines] == ["SubmissionAcceptance", "RelayAcceptance", "ContentHandover"]
    exported = tmp_path / "cli-1.json"
    assert (await asyncio.to_thread(_mail, court, "evidence", TAX, "cli-1", "-o", str(exported))).returncode == 0
    anchor = str(fed.workdir / "registry" / "anchor.json")
    checked = await asyncio.to_thread(_cli, "verify-evidence", str(exported), "--anchor", anchor)
    assert checked.returncode == 0 and "delivery timeline intact" in checked.stdout, checked.stdout + checked.stderr
    report = await asyncio.to_thread(_mail, court, "report")
    assert report.returncode == 0 and report.stdout.startswith("sender  EE/GOV/70000001/tax:"), report.stdout
    refused = await asyncio.to_thread(_mail, court, "send", "EE/GOV/70000001/marketing", "--id", "cli-2", "--text", "x")
    assert refused.returncode == 1 and "error[mailbox.unknown]" in refused.stderr


async def test_a_pushed_mailbox_hands_over_to_the_backend_and_retries_a_failing_one_until_expiry(
    fed: Federation, tax: Mail
) -> None:
    request = population_pb.GetPersonRequest(national_id="38001010001").SerializeToString()
    await tax.send("pushed-1", request, recipient=PUSH_BOX, content_type="application/x-protobuf")
    names = await wait_for_event(tax, "pushed-1", "ContentHandover")
    assert names == ["SubmissionAcceptance", "RelayAcceptance", "ContentHandover"]
    calls = [json.loads(line) for line in fed.calls_log.read_text().splitlines()]
    assert any(c.get("crossway-message-id") == "pushed-1" and c.get("crossway-client") == TAX for c in calls)
    # A backend that keeps failing (no such person): retried until the message expires.
    unknown = population_pb.GetPersonRequest(national_id="00000000000").SerializeToString()
    await tax.send("pushed-2", unknown, recipient=PUSH_BOX, content_type="application/x-protobuf", expires_in_s=4)
    names = await wait_for_event(tax, "pushed-2", "ContentHandoverFailure", timeout=30)
    assert names == ["SubmissionAcceptance", "RelayAcceptance", "ContentHandoverFailure"]
    pushed = population_mail(fed, PUSH_BOX)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await pushed.receive(wait_ms=100)
        assert metadata_text(refused.value.trailing_metadata())["crossway-error"] == "delivery.conflict"
    finally:
        await pushed.close()
