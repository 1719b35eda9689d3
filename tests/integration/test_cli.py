"""The real `crossway` command, run as a subprocess the way an operator runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _crossway(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crossway.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=180
    )


def test_demo_once_runs_the_whole_scenario_and_prints_the_summary(tmp_path: Path) -> None:
    result = _crossway("demo", "--once", "--workdir", str(tmp_path / "demo"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == "demo: 5 exchanges, 4 allowed, 1 denied, 10 audit records"


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
    for name in ("tls.key", "signing.key", "encryption.key"):
        assert (tmp_path / "keys" / name).stat().st_mode & 0o077 == 0
    assert (tmp_path / "keys" / "tls.csr").read_bytes().startswith(b"-----BEGIN CERTIFICATE REQUEST-----")
