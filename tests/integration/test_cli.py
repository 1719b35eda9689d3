"""The real `crossway` command, run as a subprocess the way an operator runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _crossway(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crossway.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=180, env=env
    )


def test_demo_once_runs_the_whole_scenario_and_prints_the_summary(tmp_path: Path) -> None:
    result = _crossway("demo", "--once", "--workdir", str(tmp_path / "demo"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert (
        "  ✔ GetCompany → SAP read by key: Tallinna Vesi AS, registry code 10000001, share capital 20000000.00 EUR"
        in lines
    )
    assert lines[-3] == "delivery: 3 messages, 1 handed over, 1 refused, 1 expired, 8 evidence events verified"
    # Topics (issue 15): two subscribers, one with a narrower @fields permit, nothing missing.
    assert lines[-2] == "topics: 1 topics, 2 subscriptions, 6 events published, 12 deliveries, 0 missing"
    assert (
        "  ✔ business register: 6 events in order per person, withheld: effective_on, family_name, previous_address"
        in lines
    )
    assert lines[-1] == "demo: 7 exchanges, 6 allowed, 1 denied, 14 audit records"
    # The backbone it ran on: TLS, and an anonymous client really tried and refused.
    knock = next(line for line in lines if "refused an anonymous client" in line)
    assert knock.startswith("  NATS tls://127.0.0.1:") and "plain: closed by the server (TLS required)" in knock
    assert "TLS without a certificate:" in knock


def test_the_demo_without_npm_to_install_node_stops_with_a_code_and_a_hint(tmp_path: Path) -> None:
    # An empty tools folder and a PATH without npm: a fresh machine without Node.js.
    empty = tmp_path / "bin"
    empty.mkdir()
    result = _crossway(
        *("demo", "--once", "--workdir", str(tmp_path / "demo"), "--tools-dir", str(tmp_path / "tools")),
        cwd=tmp_path,
        env={"PATH": str(empty), "HOME": str(tmp_path)},
    )
    assert result.returncode == 1
    assert "error[demo.node_missing]: npm is not on PATH" in result.stderr
    assert "hint: install Node.js with npm" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_gateway_with_a_broken_configuration_names_the_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[gateway]\nid = "EE/GOV/1/gw*"\ndata_dir = "data"\n')
    result = _crossway("gateway", "run", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 1
    assert "error[config.invalid]" in result.stderr
    assert str(config) in result.stderr and "id" in result.stderr
    assert "Traceback" not in result.stderr


def test_gateway_init_writes_keys_private_to_the_owner_and_requests_for_the_registry(tmp_path: Path) -> None:
    result = _crossway("gateway", "init", "--id", "EE/GOV/70000009/gw1", "--dir", str(tmp_path / "keys"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("tls.key", "signing.key", "encryption.key", "nats.key"):
        assert (tmp_path / "keys" / name).stat().st_mode & 0o077 == 0
    for name in ("tls.csr", "nats.csr"):
        assert (tmp_path / "keys" / name).read_bytes().startswith(b"-----BEGIN CERTIFICATE REQUEST-----")
    assert "crossway registry nats issue" in result.stdout


def test_gateway_init_puts_every_host_into_the_tls_request(tmp_path: Path) -> None:
    from cryptography import x509

    result = _crossway(
        *("gateway", "init", "--id", "EE/GOV/70000009/gw1", "--dir", str(tmp_path / "keys")),
        *("--host", "gw1.agency.example", "--host", "10.0.0.5", "--host", "GW1.agency.example"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "the TLS request names gw1.agency.example, 10.0.0.5" in result.stdout
    csr = x509.load_pem_x509_csr((tmp_path / "keys" / "tls.csr").read_bytes())
    names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["gw1.agency.example"]  # once, lower case
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
    # Without --host the request names this machine only, and init says so.
    bare = _crossway("gateway", "init", "--id", "EE/GOV/70000009/gw2", "--dir", str(tmp_path / "k2"), cwd=tmp_path)
    assert bare.returncode == 0 and "no --host given" in bare.stderr


def test_gateway_init_refuses_a_host_that_is_not_a_name_or_an_address(tmp_path: Path) -> None:
    result = _crossway(
        "gateway", "init", "--id", "EE/GOV/70000009/gw1", "--dir", str(tmp_path / "k"), "--host", "gw 1", cwd=tmp_path
    )
    assert result.returncode == 1
    assert "error[config.invalid]: --host 'gw 1' is neither a DNS name nor an IP address" in result.stderr
    assert not (tmp_path / "k").exists()


def test_a_reader_that_stops_early_leaves_audit_query_quiet(tmp_path: Path) -> None:
    # `crossway audit query | head -1`: the pipe closes after one line; no BrokenPipeError traceback.
    from audit.index.store import open_store
    from audit.trail.samples import sample_record

    index = tmp_path / "index.sqlite"
    store = open_store(str(index))
    try:
        records = (sample_record(n) for n in range(3000))
        store.ingest("records", [(n + 1, r.gateway, r.to_json()) for n, r in enumerate(records)], {})
    finally:
        store.close()
    query = subprocess.Popen(
        [sys.executable, "-m", "crossway.cli", "audit", "query", "--index", str(index), "--limit", "3000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    assert query.stdout is not None and query.stderr is not None
    assert query.stdout.readline()  # head -1
    query.stdout.close()
    code = query.wait(timeout=60)
    stderr = query.stderr.read().decode()
    assert stderr == ""
    assert code == 141  # as if killed by SIGPIPE, like any Unix tool whose reader left


def test_demo_call_from_a_folder_without_a_running_demo_says_so(tmp_path: Path) -> None:
    result = _crossway("demo", "call", "38001010001", cwd=tmp_path)
    assert result.returncode == 1
    assert "error[config.invalid]: no running demo in var/demo: cannot read var/demo/tax/client.port" in result.stderr
    assert "--workdir" in result.stderr and "Traceback" not in result.stderr
