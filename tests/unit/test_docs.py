"""The documentation's promises that code can check: the reference gateway.toml, the links, the length.

``docs/gateway.toml`` is loaded here with the real loader, so a renamed or removed key, or a new
one nobody documented, fails a test instead of misleading an operator. No network: the loader
only reads files.
"""

from __future__ import annotations

import ast
import re
import shutil
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import gateway.shared.config as config_module
from adapters import settings as adapter_settings
from adapters.settings import RestSettings, SapSettings
from gateway.shared.config import load_config

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "gateway.toml"
# The environment the reference names (password_env); a stand-in value, never a real secret.
ENVIRON = {"SAP_PASSWORD": "stand-in"}
FILE_SUFFIXES = (".pem", ".crt", ".key", ".pub")


class _Recording(dict[str, Any]):
    """A TOML table that notes every key the loader asks for (``get``, ``in``, ``[]``, ``items``)."""

    def __init__(self, table: Mapping[str, Any], path: str, asked: set[str]) -> None:
        super().__init__({key: _record(value, _join(path, key), asked) for key, value in table.items()})
        self._path, self._asked = path, asked

    def get(self, key: str, default: Any = None) -> Any:
        self._asked.add(_join(self._path, key))
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self._asked.add(_join(self._path, str(key)))
        return super().__contains__(key)

    def __getitem__(self, key: str) -> Any:
        self._asked.add(_join(self._path, key))
        return super().__getitem__(key)

    def items(self) -> Any:
        # Iterating a table's entries (the per-method tables) reads every one of them.
        self._asked.update(_join(self._path, key) for key in self)
        return super().items()


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _record(value: Any, path: str, asked: set[str]) -> Any:
    if isinstance(value, dict):
        return _Recording(value, path, asked)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [_Recording(v, f"{path}[{i}]", asked) for i, v in enumerate(value)]
    return value


def _paths(table: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """Every table and key set in a parsed TOML document, named like ``_Recording`` names them."""
    for key, value in table.items():
        path = _join(prefix, key)
        yield path
        if isinstance(value, dict):
            yield from _paths(value, path)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, entry in enumerate(value):
                yield from _paths(entry, f"{path}[{i}]")


def _kind(path: str) -> str:
    """``services[2].sap.methods.GetInvoice.filter`` → ``services[].sap.methods.*.filter``."""
    return re.sub(r"\.methods\.[^.]+", ".methods.*", re.sub(r"\[\d+\]", "[]", path))


def _string_values(table: Mapping[str, Any]) -> Iterator[str]:
    for value in table.values():
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            yield from _string_values(value)
        elif isinstance(value, list):
            yield from (entry for entry in value if isinstance(entry, str))
            for entry in value:
                if isinstance(entry, dict):
                    yield from _string_values(entry)


@pytest.fixture
def reference(tmp_path: Path) -> Path:
    """The reference copied beside stand-ins for the files it names (the adapters check they exist)."""
    copy = tmp_path / "gateway.toml"
    shutil.copyfile(REFERENCE, copy)
    for value in _string_values(tomllib.loads(REFERENCE.read_text(encoding="utf-8"))):
        if value.endswith(FILE_SUFFIXES) and not Path(value).is_absolute():
            (tmp_path / value).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / value).touch()
    return copy


def _asked_while_loading(path: Path, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    asked: set[str] = set()

    def loads(text: str) -> Any:
        return _Recording(tomllib.loads(text), "", asked)

    monkeypatch.setattr(config_module, "tomllib", SimpleNamespace(loads=loads, TOMLDecodeError=tomllib.TOMLDecodeError))
    load_config(path, environ=ENVIRON)
    return asked


def _tables_opened_by(modules: Iterable[Any]) -> set[str]:
    """Table names the loaders open with a literal name: ``x.sub("audit")``, ``x.tables("services")``."""
    names = set()
    for module in modules:
        for node in ast.walk(ast.parse(Path(module.__file__).read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("sub", "tables", "subtables")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                names.add(node.args[0].value)
    return names


def test_the_reference_gateway_toml_loads_with_the_real_loader(reference: Path) -> None:
    config = load_config(reference, environ=ENVIRON)
    assert str(config.gateway_id) == "EE/GOV/70000002/gw1"
    assert config.data_dir == reference.parent / "data"
    assert config.jwt is not None and len(config.client_certificates) == 1
    assert config.admin is not None and config.policy_dir == reference.parent / "policies"
    assert [s.adapter for s in config.services] == ["grpc", "rest", "sap_odata"]
    rest, sap = config.services[1].settings, config.services[2].settings
    assert isinstance(rest, RestSettings) and set(rest.methods) == {"GetAddress", "SearchAddresses", "UpdateAddress"}
    assert isinstance(sap, SapSettings) and {m.operation for m in sap.methods.values()} == {
        "read",
        "query",
        "create",
        "update",
        "delete",
        "function",
        "batch_create",
    }


def test_every_key_set_in_the_reference_is_one_the_loader_reads(
    reference: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The gateway's own tables ignore unknown keys, so a misspelt key here would mislead silently.
    asked = _asked_while_loading(reference, monkeypatch)
    document = tomllib.loads(reference.read_text(encoding="utf-8"))
    assert sorted(set(_paths(document)) - asked) == []


def test_every_key_the_loader_reads_is_set_or_shown_in_the_reference(
    reference: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Compared by kind: a key every [[services]] entry or every method table reads is documented
    # once it is set in one of them (a read has no page_size; the query beside it shows it).
    text = reference.read_text(encoding="utf-8")
    document_paths = {_kind(path) for path in _paths(tomllib.loads(text))}
    undocumented = [
        path
        for path in {_kind(path) for path in _asked_while_loading(reference, monkeypatch)} - document_paths
        # An optional key may be shown commented out: "# passphrase_env = …".
        if not re.search(rf"^#\s*{re.escape(path.rsplit('.', 1)[-1])}\s*=", text, re.MULTILINE)
    ]
    assert sorted(undocumented) == []


def test_every_table_the_loader_can_open_appears_in_the_reference() -> None:
    opened = _tables_opened_by((config_module, adapter_settings))
    assert {"gateway", "audit", "admin", "rest", "sap", "methods"} <= opened  # the scan still finds them
    document = tomllib.loads(REFERENCE.read_text(encoding="utf-8"))
    present = {path.rsplit(".", 1)[-1].split("[")[0] for path in _paths(document)}
    assert sorted(opened - present) == []


def test_the_readme_stays_a_front_page_under_250_lines() -> None:
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) < 250


@pytest.mark.parametrize(
    "page", [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_every_relative_link_in_the_docs_points_at_a_file_that_exists(page: Path) -> None:
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8"))
    missing = [t for t in targets if "://" not in t and not (page.parent / t).exists()]
    assert missing == []
