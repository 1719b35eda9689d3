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
