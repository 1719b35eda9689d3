"""Issue 12 acceptance: a federation built the way the operator guide says verifies with --signed-only.

Every step is the command an operator types (``crossway registry …``, ``crossway gateway init``,
``crossway registry serve --nats``, ``crossway gateway run``, ``crossway audit index`` and
``crossway audit verify``), run as a subprocess; only NATS and the sample backend are started as
the guide's prerequisites. ``registry serve`` cosigns the gateways' checkpoints, so the audit
trail verifies — before it did not, because only the demo started a cosigner.

Since issue 11 the backbone takes identities: every key is made where it is used (``crossway nats
request``, ``gateway init``), the registry issues the NATS certificates and writes the servers'
users file, the streams are provisioned by the admin identity (``crossway nats provision``), and
NATS runs with TLS 1.3 and that users file (docs/backbone.md; the operator guide is to follow).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from crossway.demo.federation import DEMO_POLICY, population_descriptor_set
from crossway.demo.processes import ManagedProcess
from crossway.natsbox import EmbeddedNats, ServerTls
from crossway.security.keys import generate_signing_key, save_pem
from crossway.security.tokens import mint_token
from protos.demo.population.v1 import population_pb2 as pb
from protos.demo.population.v1 import population_pb2_grpc as pb_grpc

pytestmark = [pytest.mark.timeout(240)]

CROSSWAY = [str(Path(sys.executable).parent / "crossway")]  # the installed command, as an operator runs it
TAX, POPULATION = "EE/GOV/70000001", "EE/GOV/70000002"
SERVICE = f"{POPULATION}/population/population.v1.PersonRegistry"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CROSSWAY, *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def _ok(*args: str, cwd: Path) -> str:
    result = _run(*args, cwd=cwd)
    assert result.returncode == 0, f"crossway {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _gateway_toml(gateway: str, nats: str, extra: str) -> str:
    return f"""\
[gateway]
id = "{gateway}"
data_dir = "data"

[listen]
client = "127.0.0.1:0"
peer = "127.0.0.1:0"

[nats]
url = "{nats}"
ca = "../reg/nats-ca.pem"
certificate = "keys/nats.crt"
key = "keys/nats.key"

[registry]
anchor = "../reg/anchor.json"

[keys]
tls_key = "keys/tls.key"
tls_certificate = "keys/tls.crt"
signing_key = "keys/signing.key"
signing_certificate = "keys/signing.crt"
encryption_key = "keys/encryption.key"
{extra}"""


class _Running:
    """The long-running processes of the guide, stopped in reverse order."""

    def __init__(self) -> None:
        self.processes: list[ManagedProcess] = []

    async def start(self, name: str, *args: str, ready: str, cwd: Path) -> str:
        process = ManagedProcess(name, [*CROSSWAY, *args], cwd=cwd)
        self.processes.append(process)
        await process.start()
        return (await process.wait_for(ready, 60)).group(0)

    async def aclose(self) -> None:
        for process in reversed(self.processes):
            await process.stop()


@pytest.fixture
async def running() -> AsyncIterator[_Running]:
    procs = _Running()
    try:
        yield procs
    finally:
        await procs.aclose()


def _identity(directory: str, root: Path) -> tuple[str, ...]:
    """The options that make a command connect as the identity whose key is in ``directory``."""
    return (
        "--nats-ca",
        "reg/nats-ca.pem",
        "--nats-cert",
        f"{directory}/nats.crt",
        "--nats-key",
        f"{directory}/nats.key",
    )


async def test_a_federation_built_by_the_operator_guide_verifies_with_signed_only(
    tmp_path: Path, running: _Running
) -> None:
    nats: EmbeddedNats | None = None
    try:
        nats = await _registry_and_backbone(tmp_path)
        await _build_and_verify(tmp_path, nats, running)
    finally:
        await running.aclose()
        if nats is not None:
            await nats.aclose()


async def _registry_and_backbone(root: Path) -> EmbeddedNats:
    # Registry operator: a registry, two members, their subsystems and gateways.
    _ok("registry", "init", "--dir", "reg", "--instance", "EE", cwd=root)
    for member, name, subsystem in ((TAX, "Tax Board", "tax"), (POPULATION, "Population Register", "population")):
        _ok("registry", "member", "add", member, "--name", name, "--dir", "reg", cwd=root)
        _ok("registry", "subsystem", "add", f"{member}/{subsystem}", "--dir", "reg", cwd=root)
        _ok("registry", "gateway", "add", f"{member}/gw1", "--address", "127.0.0.1:9", "--dir", "reg", cwd=root)
    # Each agency: keys on its own host; the registry operator issues the certificates.
    for member, agency in ((TAX, "tax"), (POPULATION, "population")):
        (root / agency).mkdir()
        keys = f"{agency}/keys"
        _ok("gateway", "init", "--id", f"{member}/gw1", "--dir", keys, cwd=root)
        _ok("registry", "cert", "issue", "--csr", f"{keys}/tls.csr", "--kind", "tls", "--gateway", f"{member}/gw1",
            "-o", f"{keys}/tls.crt", "--dir", "reg", cwd=root)  # fmt: skip
        _ok("registry", "cert", "issue", "--csr", f"{keys}/signing.csr", "--kind", "sign", "--member", member,
            "-o", f"{keys}/signing.crt", "--dir", "reg", cwd=root)  # fmt: skip
        _ok("registry", "member", "encryption-key", member, "--public-key", f"{keys}/encryption.pub",
            "--dir", "reg", cwd=root)  # fmt: skip
    (root / "population.fds").write_bytes(population_descriptor_set())
    _ok("registry", "service", "add", SERVICE, "--descriptor-set", "population.fds", "--require-encryption",
        "--dir", "reg", cwd=root)  # fmt: skip
    # The backbone: each identity's key made where it is used, its certificate issued by the registry.
    for member, agency in ((TAX, "tax"), (POPULATION, "population")):
        _ok("registry", "nats", "issue", "--csr", f"{agency}/keys/nats.csr", "--role", "gateway", "--name",
            f"{member}/gw1", "-o", f"{agency}/keys/nats.crt", "--dir", "reg", cwd=root)  # fmt: skip
    for directory, role, name in (
        ("reg-nats", "registry", "EE"),
        ("admin", "admin", "ops"),
        ("auditor", "index", "main"),
    ):
        _ok("nats", "request", "--dir", directory, cwd=root)
        _ok("registry", "nats", "issue", "--csr", f"{directory}/nats.csr", "--role", role, "--name", name,
            "-o", f"{directory}/nats.crt", "--dir", "reg", cwd=root)  # fmt: skip
    _ok("nats", "request", "--dir", "nats-node", cwd=root)
    _ok("registry", "nats", "server-cert", "--csr", "nats-node/nats.csr", "--name", "n1", "-o", "nats-node/nats.crt",
        "--dir", "reg", cwd=root)  # fmt: skip
    _ok("registry", "nats", "users", "-o", "users.conf", "--dir", "reg", cwd=root)
    # NATS with TLS 1.3 and the generated users (what a nats-server.conf including users.conf does).
    tls = ServerTls(root / "nats-node" / "nats.crt", root / "nats-node" / "nats.key", root / "reg" / "nats-ca.pem")
    nats = EmbeddedNats(root / "nats", tls=tls, authorization=root / "users.conf")
    await nats.start()
    (root / "nats.pid").write_text(str(nats.pid))
    _ok("nats", "provision", "--nats", nats.url, *_identity("admin", root), cwd=root)
    assert _run("nats", "knock", nats.url, cwd=root).returncode == 0  # nobody gets in anonymously
    return nats


async def _build_and_verify(root: Path, server: EmbeddedNats, running: _Running) -> None:
    nats = server.url
    # The registry keeps the configuration published — and cosigns audit checkpoints.
    await running.start("registry", "registry", "serve", "--dir", "reg", "--nats", nats, *_identity("reg-nats", root),
                        "--nats-users", "users.conf", "--nats-pid-file", "nats.pid", "--listen", "127.0.0.1:0",
                        ready=r"registry cosigning audit checkpoints", cwd=root)  # fmt: skip

    # The provider agency: its backend, its policies, its gateway.
    backend = await running.start("backend", "demo", "backend", ready=r"backend listening on \S+", cwd=root)
    backend_address = backend.rsplit(" ", 1)[-1]
    (root / "population" / "policies").mkdir()
    (root / "population" / "policies" / "population.cedar").write_text(DEMO_POLICY)
    provider_toml = root / "population" / "gateway.toml"
    services = f'\n[policies]\ndir = "policies"\n\n[[services]]\nid = "{SERVICE}"\naddress = "{backend_address}"\n'
    provider_toml.write_text(_gateway_toml(f"{POPULATION}/gw1", nats, services))
    # The client agency: callers authenticate with JWTs of its identity provider.
    idp = generate_signing_key("ES256")
    save_pem(root / "tax" / "idp.pub", idp.public_key())
    tax_toml = root / "tax" / "gateway.toml"
    jwt = f'\n[client_auth.jwt]\nissuer = "https://idp.tax.example"\naudience = "crossway:{TAX}/gw1"\n'
    tax_toml.write_text(_gateway_toml(f"{TAX}/gw1", nats, jwt + 'public_keys = ["idp.pub"]\n'))
    ports: dict[str, tuple[int, int]] = {}
    for agency, toml in (("population", provider_toml), ("tax", tax_toml)):
        ready = await running.start(f"gateway {agency}", "gateway", "run", "--config", str(toml),
                                    ready=r"ready: client=127\.0\.0\.1:(\d+) client_mtls=\S+ peer=127\.0\.0\.1:(\d+)",
                                    cwd=root / agency)  # fmt: skip
        client_port, peer_port = (int(p.split(":")[-1]) for p in (ready.split()[1], ready.split()[3]))
        ports[agency] = (client_port, peer_port)
        member = TAX if agency == "tax" else POPULATION
        _ok("registry", "gateway", "set-address", f"{member}/gw1", "--address", f"127.0.0.1:{peer_port}",
            "--dir", "reg", cwd=root)  # fmt: skip

    # An agency system calls the provider through its gateway (once the new addresses are out).
    ca = (root / "reg" / "ca.pem").read_bytes()
    token = mint_token(idp, subject=f"{TAX}/tax", issuer="https://idp.tax.example", audience=f"crossway:{TAX}/gw1")
    async with grpc.aio.secure_channel(f"127.0.0.1:{ports['tax'][0]}", grpc.ssl_channel_credentials(ca)) as channel:
        stub = pb_grpc.PersonRegistryStub(channel)
        deadline = time.monotonic() + 30
        answered = 0
        while answered < 5:
            try:
                await stub.GetPerson(
                    pb.GetPersonRequest(national_id="38001010001"),
                    metadata=(("authorization", f"Bearer {token}"),),
                    timeout=10,
                )
                answered += 1
            except grpc.aio.AioRpcError:
                assert time.monotonic() < deadline, "the federation never answered"
                await asyncio.sleep(0.5)

    # The auditor: index the trail, verify what is signed.
    deadline = time.monotonic() + 60
    while True:
        _ok(
            "audit", "index", "--nats", nats, *_identity("auditor", root), "--index", "audit.sqlite", "--once", cwd=root
        )
        verify = _run("audit", "verify", "--index", "audit.sqlite", "--anchor", "reg/anchor.json", "--signed-only",
                      "--quiet", cwd=root)  # fmt: skip
        covered = f"{TAX}/gw1" in verify.stdout.split("cosigned checkpoints:")[-1]
        if verify.returncode == 0 and covered and f"{POPULATION}/gw1" in verify.stdout.split("checkpoints:")[-1]:
            break
        assert time.monotonic() < deadline, f"never verified:\n{verify.stdout}\n{verify.stderr}"
        await asyncio.sleep(1.0)
    assert "intact" in verify.stdout
