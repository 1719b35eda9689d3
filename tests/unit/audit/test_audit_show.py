"""``crossway audit show`` marks where the two sides of one exchange disagree — the status too."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.index import open_store
from audit.trail.samples import sample_record
from crossway.cli import main


def _index(tmp_path: Path, client_status: str, provider_status: str) -> str:
    path = str(tmp_path / "index.sqlite")
    client = sample_record(1, gateway="EE/GOV/70000001/gw1", side="client", status=client_status)
    provider = sample_record(1, gateway="EE/GOV/70000002/gw1", side="provider", status=provider_status)
    store = open_store(path)
    try:
        items = [(1, client.gateway, client.to_json()), (2, provider.gateway, provider.to_json())]
        store.ingest("records", items, {})
    finally:
        store.close()
    return path


def test_show_marks_a_status_the_two_sides_recorded_differently(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = _index(tmp_path, "OK", "CANCELLED")
    assert main(["audit", "show", "msg-00000001", "--index", index]) == 0
    out = capsys.readouterr().out
    status_line = next(line for line in out.splitlines() if line.strip().startswith("status "))
    assert "OK" in status_line and "CANCELLED" in status_line and "<-- DISAGREE" in status_line
    assert "status differs: the provider recorded CANCELLED, the client side OK" in out


def test_show_marks_nothing_when_both_sides_agree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    index = _index(tmp_path, "OK", "OK")
    assert main(["audit", "show", "msg-00000001", "--index", index]) == 0
    out = capsys.readouterr().out
    assert "DISAGREE" not in out and "status differs" not in out
