"""`crossway registry …` run as real subprocesses, the way an operator runs it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
from cryptography.hazmat.primitives import serialization

from crossway.core.clock import SystemClock
from crossway.natsclient import NatsAccess
from crossway.natslocal import LocalBackbone
from crossway.security.keys import (
    generate_signing_key,
    generate_tls_key,
    generate_x25519_key,
    load_certificate,
    save_pem,
    x25519_public_raw,
)
from crossway.security.natspki import NatsIdentity, NatsRole
from crossway.security.pki import build_csr, inspect_certificate
from protos.crossway.v1 import registry_pb2, registry_pb2_grpc
from registry import NatsConfigurationSource, load_anchor, verify_configuration

CROSSWAY = str(Path(sys.executable).parent / "crossway")


def _run(directory: Path, *args: str, passphrase: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CROSSWAY_REGISTRY_PASSPHRASE"}
    if passphrase is not None:
        env["CROSSWAY_REGISTRY_PASSPHRASE"] = passphrase
    return subprocess.run(
        _argv(directory, args),
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def _argv(directory: Path, args: tuple[str, ...]) -> list[str]:
    return [CROSSWAY, "registry", *args, "--dir", str(directory)]


def _ok(directory: Path, *args: str) -> str:
    result = _run(directory, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _admit(tmp_path: Path) -> Path:
    directory = tmp_path / "registry"
    _ok(directory, "init", "--instance", "EE")
    _ok(directory, "member", "add", "EE/GOV/70000001", "--name", "Population Register")
    _ok(directory, "subsystem", "add", "EE/GOV/70000001/population")
    _ok(directory, "gateway", "add", "EE/GOV/70000001/gw1", "--address", "127.0.0.1:7443")
    return directory


def test_an_operator_admits_a_member_issues_certificates_and_publishes(tmp_path: Path) -> None:
    directory = _admit(tmp_path)
    tls_csr, sign_csr, enc = tmp_path / "tls.csr", tmp_path / "sign.csr", tmp_path / "enc.pub"
    save_pem(tls_csr, build_csr(generate_tls_key(), subject_uri="x", dns_names=["localhost"]))
    save_pem(sign_csr, build_csr(generate_signing_key(), subject_uri="x"))
    enc.write_bytes(x25519_public_raw(generate_x25519_key()))
    _ok(
        directory,
        "cert",
        "issue",
        "--csr",
        str(tls_csr),
        "--kind",
        "tls",
        "--gateway",
        "EE/GOV/70000001/gw1",
        "-o",
        str(tmp_path / "tls.pem"),
    )
    _ok(
        directory,
        "cert",
        "issue",
        "--csr",
        str(sign_csr),
        "--kind",
        "sign",
        "--member",
        "EE/GOV/70000001",
        "-o",
        str(tmp_path / "sign.pem"),
    )
    _ok(directory, "member", "encryption-key", "EE/GOV/70000001", "--public-key", str(enc))
    tls = inspect_certificate(load_certificate(tmp_path / "tls.pem").public_bytes(serialization.Encoding.DER))
    _ok(directory, "revoke", tls.serial, "--reason", "test")
    out = tmp_path / "config.bin"
    assert "serial 1" in _ok(directory, "publish", "--validity", "120", "-o", str(out))

    config = verify_configuration(out.read_bytes(), load_anchor(directory / "anchor.json"), SystemClock().now_ms())
    member = config.members()[0]
    assert str(member.id) == "EE/GOV/70000001" and len(member.signing_keys) == 1
    assert config.is_revoked(tls.serial) and member.encryption_public_key == enc.read_bytes()
    listing = _ok(directory, "list")
    assert "member EE/GOV/70000001  Population Register" in listing and "revoked: test" in listing


def test_a_registry_created_with_a_passphrase_keeps_its_keys_encrypted_and_needs_it(tmp_path: Path) -> None:
    directory = tmp_path / "registry"
    secret = "correct horse battery staple"
    created = _run(directory, "init", "--instance", "EE", passphrase=secret)
    assert created.returncode == 0, created.stderr
    for name in ("ca.key", "config.key"):
        pem = (directory / name).read_text()
        assert pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    opened = _run(directory, "member", "add", "EE/GOV/70000001", "--name", "Tax Board", passphrase=secret)
    assert opened.returncode == 0, opened.stderr
    missing = _run(directory, "list")
    assert missing.returncode == 1 and "error[config.invalid]" in missing.stderr
    assert "CROSSWAY_REGISTRY_PASSPHRASE" in missing.stderr  # the hint names what to set
    wrong = _run(directory, "list", passphrase="not it")
    assert wrong.returncode == 1 and "does not open this key" in wrong.stderr
    assert secret not in missing.stderr + wrong.stderr + created.stdout + opened.stdout
    assert "Traceback" not in missing.stderr + wrong.stderr
    # Without a passphrase at init the operator is told the keys are stored in the clear.
    plain = _run(tmp_path / "plain", "init", "--instance", "EE")
    assert "not encrypted" in plain.stdout


def test_mistakes_print_a_code_and_a_hint_instead_of_a_traceback(tmp_path: Path) -> None:
    directory = _admit(tmp_path)
    again = _run(directory, "init", "--instance", "EE")
    assert again.returncode == 1 and "error[config.invalid]" in again.stderr and "hint:" in again.stderr
    bad_id = _run(directory, "member", "add", "EE/GOV", "--name", "x")
    assert bad_id.returncode == 1 and "error[id.invalid]" in bad_id.stderr
    garbage = tmp_path / "garbage.csr"
    garbage.write_bytes(b"nope")
    bad_csr = _run(
        directory,
        "cert",
        "issue",
        "--csr",
        str(garbage),
        "--kind",
        "sign",
        "--member",
        "EE/GOV/70000001",
        "-o",
        str(tmp_path / "x.pem"),
    )
    assert bad_csr.returncode == 1 and "error[registry.csr_invalid]" in bad_csr.stderr
    assert "Traceback" not in again.stderr + bad_id.stderr + bad_csr.stderr


async def test_publish_to_nats_reaches_a_gateway_source(
    nats_server: LocalBackbone, gateway_nats: NatsAccess, tmp_path: Path
) -> None:
    directory = _admit(tmp_path)
    registry = await nats_server.grant(NatsIdentity(NatsRole.REGISTRY, "EE"))
    identity = ("--nats-ca", str(registry.ca_file), "--nats-cert", str(registry.cert_file))
    identity += ("--nats-key", str(registry.key_file))
    proc = await asyncio.create_subprocess_exec(
        *_argv(directory, ("publish", "--nats", nats_server.url, *identity)), stderr=subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, stderr.decode()
    source = NatsConfigurationSource(gateway_nats, load_anchor(directory / "anchor.json"))
    await source.start()
    try:
        assert source.current().serial == 1
    finally:
        await source.aclose()


async def test_publish_to_nats_without_an_identity_is_refused_before_connecting(
    nats_server: LocalBackbone, tmp_path: Path
) -> None:
    directory = _admit(tmp_path)
    result = _run(directory, "publish", "--nats", nats_server.url)
    assert result.returncode == 1
    assert "nobody connects to NATS anonymously" in result.stderr and "Traceback" not in result.stderr


async def test_serve_announces_its_address_answers_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    directory = _admit(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        *_argv(directory, ("serve", "--listen", "127.0.0.1:0")), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line.startswith("registry listening on 127.0.0.1:")
        address = line.rsplit(" ", 1)[1].strip()
        async with grpc.aio.insecure_channel(address) as channel:
            stub = registry_pb2_grpc.RegistryStub(channel)  # type: ignore[no-untyped-call]
            signed = await stub.GetConfiguration(registry_pb2.GetConfigurationRequest(), timeout=5)
        assert verify_configuration(
            signed.SerializeToString(), load_anchor(directory / "anchor.json"), SystemClock().now_ms()
        )
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_an_operator_registers_a_topic_and_a_bad_one_is_refused_with_a_code(tmp_path: Path) -> None:
    from crossway.demo.members import population_descriptor_set

    directory = _admit(tmp_path)
    fds = tmp_path / "population.pb"
    fds.write_bytes(population_descriptor_set())
    topic = "EE/GOV/70000001/population/address-changes"
    added = _ok(
        directory,
        "topic",
        "add",
        topic,
        "--type",
        "population.v1.AddressChanged",
        "--descriptor-set",
        str(fds),
        "--key-field",
        "national_id",
    )
    assert f"topic {topic} set" in added
    assert f"topic {topic}  population.v1.AddressChanged  key national_id" in _ok(directory, "topic", "list")
    out = tmp_path / "config.bin"
    _ok(directory, "publish", "--validity", "120", "-o", str(out))
    config = verify_configuration(out.read_bytes(), load_anchor(directory / "anchor.json"), SystemClock().now_ms())
    view = config.topic(topic)
    assert view is not None and view.key_field == "national_id"
    bad = _run(
        directory,
        "topic",
        "add",
        topic,
        "--type",
        "population.v1.AddressChanged",
        "--descriptor-set",
        str(fds),
        "--key-field",
        "nope",
    )
    assert bad.returncode == 1 and "error[config.invalid]" in bad.stderr and "hint:" in bad.stderr
