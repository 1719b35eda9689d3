"""The systemd units in packaging/systemd are valid: `systemd-analyze verify` finds nothing to say.

Each unit is checked with ExecStart pointed at this checkout's own `crossway` (the units name
/usr/bin/crossway, where a package installs it), so the command a unit runs must exist too.
systemd-analyze exits 0 on unknown keys and bad values (it only warns), so any output fails.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = sorted((Path(__file__).resolve().parents[2] / "packaging" / "systemd").glob("*.service"))
CROSSWAY = Path(sys.executable).parent / "crossway"


def test_every_component_has_a_unit() -> None:
    assert {u.name for u in UNITS} >= {
        "crossway-gateway.service",
        "crossway-registry.service",
        "crossway-audit-index.service",
        "crossway-console.service",
    }


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_the_unit_verifies_cleanly(unit: Path, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is missing (Debian package systemd)"
    local = tmp_path / unit.name
    local.write_text(unit.read_text().replace("/usr/bin/crossway", str(CROSSWAY)))

    result = subprocess.run([analyze, "verify", "--man=no", str(local)], capture_output=True, text=True, timeout=60)

    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_a_unit_with_a_typo_is_caught(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None
    broken = tmp_path / "crossway-gateway.service"
    text = UNITS[0].read_text().replace("/usr/bin/crossway", str(CROSSWAY))
    broken.write_text(text.replace("Restart=on-failure", "Restart=on-failur"))

    result = subprocess.run([analyze, "verify", "--man=no", str(broken)], capture_output=True, text=True, timeout=60)

    assert "on-failur" in result.stdout + result.stderr
