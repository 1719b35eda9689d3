"""Issue 3 over real gateways: the policy CLI as a subprocess, the admin API, versions pushed
over NATS, data minimization, quotas and the audit trail of a policy change."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from audit.trail import fetch_records
from crossway.demo.federation import POPULATION_SERVICE, Federation, population_descriptor_set
from crossway.security.keys import generate_signing_key, save_pem
from crossway.security.tokens import mint_token
from protos.demo.population.v1 import population_pb2 as pb
from protos.demo.population.v1 import population_pb2_grpc as pb_grpc

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADMIN_ISSUER = "https://admin-idp.population.example"
ADMIN_AUDIENCE = "crossway-admin"
SERVICE = str(POPULATION_SERVICE)

BASE = f"""\
@id("tax-uses-population-register")
permit (
  principal == Crossway::Subsystem::"EE/GOV/70000001/tax",
  action in Crossway::Action::"population.v1.PersonRegistry/*",
  resource == Crossway::Service::"{SERVICE}"
)
when {{ context.purpose == "tax-assessment" }};
"""

MINIMIZED = BASE.replace("@id(", '@fields("national_id, given_name, family_name")\n@id(', 1)

QUOTA = (
    BASE
    + f"""
@id("tax-quota-check")
@quota("2/min")
permit (
  principal == Crossway::Subsystem::"EE/GOV/70000001/tax",
  action == Crossway::Action::"population.v1.PersonRegistry/GetPerson",
  resource == Crossway::Service::"{SERVICE}"
)
when {{ context.purpose == "quota-check" }};
"""
)


class AdminFederation(Federation):
    """The demo federation with an [admin] table on the population gateway."""

    admin_key = generate_signing_key("ES256")

    def _write_population_gateway(self) -> None:
        super()._write_population_gateway()
        agency = self.population
        save_pem(agency.directory / "admin-idp.pub", self.admin_key.public_key())
        assert agency.config_path is not None
        (agency.directory / "policies" / "population.cedar").write_text(BASE)
        with agency.config_path.open("a") as f:
            f.write(
                f'\n[admin]\nlisten = "127.0.0.1:0"\nissuer = "{ADMIN_ISSUER}"\n'
                f'audience = "{ADMIN_AUDIENCE}"\npublic_keys = ["admin-idp.pub"]\n'
            )

    def admin_token(self, subject: str, *roles: str) -> str:
        return mint_token(
            self.admin_key,
            subject=subject,
            issuer=ADMIN_ISSUER,
            audience=ADMIN_AUDIENCE,
            extra={"roles": list(roles)},
        )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AdminFederation]:
    async with AdminFederation(tmp_path_factory.mktemp("policy-admin"), span_flush_ms=200) as federation:
        yield federation


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def admin_port(fed: AdminFederation) -> int:
    assert fed.population.process is not None
    match = await fed.population.process.wait_for(r"admin API of \S+ listening on 127\.0\.0\.1:(\d+)")
    return int(match.group(1))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crossway.cli", "policy", *args], capture_output=True, text=True, timeout=60
    )


def _online(fed: AdminFederation, port: int, token: str, tmp: Path) -> list[str]:
    ca, token_file = tmp / "ca.pem", tmp / f"token-{abs(hash(token))}"
    ca.write_bytes(fed.ca_pem)
    token_file.write_text(token)
    return ["--gateway", f"127.0.0.1:{port}", "--ca", str(ca), "--token-file", str(token_file)]


def _policy_dir(tmp: Path, name: str, text: str) -> Path:
    directory = tmp / name
    directory.mkdir(exist_ok=True)
    (directory / "population.cedar").write_text(text)
    return directory


def _md(fed: AdminFederation, purpose: str = "tax-assessment") -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {fed.token()}"), ("crossway-purpose", purpose))


def _code(exc: grpc.aio.AioRpcError) -> str:
    return str(dict(exc.trailing_metadata() or ()).get("crossway-error", ""))


async def _get(fed: AdminFederation, purpose: str = "tax-assessment") -> pb.Person:
    async with fed.channel() as channel:
        person: pb.Person = await pb_grpc.PersonRegistryStub(channel).GetPerson(
            pb.GetPersonRequest(national_id="38001010001"), metadata=_md(fed, purpose), timeout=10
        )
        return person


# -- offline CLI ---------------------------------------------------------------------------------


def _service_arg(tmp: Path) -> list[str]:
    fds = tmp / "population.fds"
    fds.write_bytes(population_descriptor_set())
    return ["--service", f"{SERVICE}={fds}"]


async def test_validate_rejects_a_typo_naming_file_line_and_hint(tmp_path: Path) -> None:
    good = _policy_dir(tmp_path, "good", BASE)
    assert _cli("validate", str(good), *_service_arg(tmp_path)).returncode == 0
    bad = _policy_dir(tmp_path, "bad", BASE.replace("context.purpose", "context.purpse"))
    result = _cli("validate", str(bad), *_service_arg(tmp_path))
    assert result.returncode == 1
    assert "population.cedar:7:" in result.stderr and "purpse" in result.stderr
    assert "did you mean `purpose`" in result.stderr


async def test_the_test_command_prints_allow_and_deny_with_the_deciding_policies(tmp_path: Path) -> None:
    text = BASE + (
        '\n@id("no-marketing")\nforbid (principal == Crossway::Subsystem::"EE/GOV/70000001/tax", action, resource)\n'
        'when { context.purpose == "marketing" };\n'
    )
    directory = _policy_dir(tmp_path, "p", text)
    common = ["test", str(directory), *_service_arg(tmp_path), "--client", "EE/GOV/70000001/tax"]
    common += ["--method", f"{SERVICE}/GetPerson"]
    allow = _cli(*common, "--purpose", "tax-assessment")
    assert allow.returncode == 0 and allow.stdout.startswith("ALLOW  by tax-uses-population-register")
    forbid = _cli(*common, "--purpose", "marketing")
    assert forbid.stdout.startswith("DENY   forbidden by no-marketing")
    nothing = _cli(*common, "--purpose", "curiosity", "--exit-code")
    assert nothing.returncode == 1 and nothing.stdout.startswith("DENY   no permit matched")
    cases = tmp_path / "cases.toml"
    cases.write_text(
        f'[[case]]\nname = "tax reads"\nclient = "EE/GOV/70000001/tax"\nmethod = "{SERVICE}/GetPerson"\n'
        'purpose = "tax-assessment"\nexpect = "allow"\npolicies = ["tax-uses-population-register"]\n\n'
        f'[[case]]\nname = "no marketing"\nclient = "EE/GOV/70000001/tax"\nmethod = "{SERVICE}/GetPerson"\n'
        'purpose = "marketing"\nexpect = "allow"\n'
    )
    run = _cli("test", str(directory), *_service_arg(tmp_path), "--cases", str(cases))
    assert run.returncode == 1 and "1 passed, 1 failed" in run.stdout
    assert "FAIL no marketing: DENY   forbidden by no-marketing" in run.stdout


async def test_a_misspelt_key_in_a_test_cases_file_is_named_with_the_nearest_key(tmp_path: Path) -> None:
    # `expected` instead of `expect` would silently turn an assertion into a mere print.
    directory = _policy_dir(tmp_path, "p", BASE)
    cases = tmp_path / "cases.toml"
    cases.write_text(f'[[case]]\nclient = "EE/GOV/70000001/tax"\nmethod = "{SERVICE}/GetPerson"\nexpected = "deny"\n')
    run = _cli("test", str(directory), *_service_arg(tmp_path), "--cases", str(cases))
    assert run.returncode == 1
    assert f"error[config.invalid]: {cases}: [case[0]] expected: unknown key" in run.stderr
    assert "did you mean `expect`?" in run.stderr and "Traceback" not in run.stderr


# -- the admin API on a running gateway ------------------------------------------------------------


async def test_the_admin_api_refuses_a_token_without_an_admin_role(
    fed: AdminFederation, admin_port: int, tmp_path: Path
) -> None:
    intern = _online(fed, admin_port, fed.admin_token("intern@pop", "developer"), tmp_path)
    result = await asyncio.to_thread(_cli, "history", *intern)
    assert result.returncode == 1 and "error[admin.forbidden]" in result.stderr
    observer = _online(fed, admin_port, fed.admin_token("watcher@pop", "observer"), tmp_path)
    assert (await asyncio.to_thread(_cli, "history", *observer)).returncode == 0
    applied = await asyncio.to_thread(_cli, "apply", str(_policy_dir(tmp_path, "x", BASE)), *observer)
    assert applied.returncode == 1 and "error[admin.forbidden]" in applied.stderr
    foreign = mint_token(generate_signing_key("ES256"), subject="x", issuer=ADMIN_ISSUER, audience=ADMIN_AUDIENCE)
    forged = await asyncio.to_thread(_cli, "history", *_online(fed, admin_port, foreign, tmp_path))
    assert "error[admin.unauthenticated]" in forged.stderr


async def test_apply_under_load_masks_fields_then_rollback_restores_them_with_no_failed_call(
    fed: AdminFederation, admin_port: int, tmp_path: Path
) -> None:
    admin = _online(fed, admin_port, fed.admin_token("alice@pop", "policy-admin"), tmp_path)
    assert (await _get(fed)).health_notes  # the backend's answer, whole
    failures: list[BaseException] = []
    seen: list[bool] = []
    stop = asyncio.Event()

    async def load() -> None:
        while not stop.is_set():
            try:
                seen.append(bool((await _get(fed)).health_notes))
            except grpc.aio.AioRpcError as exc:
                failures.append(exc)

    workers = [asyncio.create_task(load()) for _ in range(3)]
    try:
        await asyncio.sleep(0.5)
        minimized = _policy_dir(tmp_path, "minimized", MINIMIZED)
        diff = await asyncio.to_thread(_cli, "diff", str(minimized), *admin)
        assert diff.returncode == 0 and '+@fields("national_id, given_name, family_name")' in diff.stdout
        applied = await asyncio.to_thread(_cli, "apply", str(minimized), *admin, "--summary", "withhold health")
        assert applied.returncode == 0, applied.stderr
        assert "applied version" in applied.stdout
        await asyncio.sleep(2.0)  # new calls use the new version within 2 s
        marker = len(seen)
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.gather(*workers)
    assert not failures
    assert seen[0] and not any(seen[marker:])  # before: whole; after: minimized
    person = await _get(fed)
    assert person.family_name and not person.health_notes and not person.address

    history = await asyncio.to_thread(_cli, "history", *admin)
    assert "alice@pop" in history.stdout and "withhold health" in history.stdout
    number = int(applied.stdout.split("version ")[1].split(":")[0])
    back = await asyncio.to_thread(_cli, "rollback", str(number - 1), *admin)
    assert back.returncode == 0, back.stderr
    assert (await _get(fed)).health_notes

    # The provider's audit record of a minimized call lists what was withheld, and the policy
    # change itself is in the trail: who, which version, the diff's digest.
    records = await fetch_records(fed.auditor)
    masked = [r for r in records if r.side == "provider" and r.withheld_fields]
    assert masked and set(masked[-1].withheld_fields) == {"address", "date_of_birth", "health_notes"}
    changes = [r for r in records if r.service == "crossway.v1.Admin"]
    assert changes and {r.side for r in changes} == {"admin"}  # not a side of an exchange
    assert any(r.client == "alice@pop" and r.policy_version == f"v{number}" and r.request_sha256 for r in changes)


async def test_a_quota_hit_is_refused_with_rate_limited_and_a_retry_after(
    fed: AdminFederation, admin_port: int, tmp_path: Path
) -> None:
    admin = _online(fed, admin_port, fed.admin_token("alice@pop", "policy-admin"), tmp_path)
    applied = await asyncio.to_thread(_cli, "apply", str(_policy_dir(tmp_path, "quota", QUOTA)), *admin)
    assert applied.returncode == 0, applied.stderr
    await _get(fed, "quota-check")
    await _get(fed, "quota-check")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _get(fed, "quota-check")
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _code(info.value) == "policy.rate_limited"
    assert "retry after" in (info.value.details() or "")
