"""The import contracts in .importlinter hold today, and they do break when a layer is crossed.

Each test copies the product packages into a scratch folder, adds one forbidden import, and runs
the real ``lint-imports`` there: a contract that could not fail would pass these tests never.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("crossway", "console", "gateway", "audit", "registry", "policies", "adapters", "bench", "protos")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _tree(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "node_modules")
        )
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
    )


def _add_import(tree: Path, module: str, statement: str) -> None:
    path = tree / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text() + f"\n{statement}  # a deliberate violation\n")


def test_the_tree_as_committed_keeps_every_contract(tmp_path: Path) -> None:
    result = _lint(_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "statement", "broken"),
    [
        ("gateway.client.callers", "import gateway.provider.pipeline", "never import each other"),
        ("gateway.provider.peers", "from protos.crossway.v1 import envelope_pb2", "only at the edge"),
        ("audit.trail.record", "import audit.index.store", "never imports audit.index"),
        ("crossway.core.ids", "import gateway.wire.frames", "The product in layers"),
        ("gateway.wire.codec", "import gateway.shared.context", "The gateway's rooms"),
        ("console.backends", "import audit.index.store", "over their APIs only"),
    ],
)
def test_an_import_across_a_layer_breaks_its_contract(tmp_path: Path, module: str, statement: str, broken: str) -> None:
    tree = _tree(tmp_path)
    _add_import(tree, module, statement)

    result = _lint(tree)

    assert result.returncode == 1
    assert any(broken in line and "BROKEN" in line for line in result.stdout.splitlines()), result.stdout
