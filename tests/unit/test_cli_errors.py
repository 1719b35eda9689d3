"""How ``crossway`` ends on an error: a code and a hint for expected ones, `internal` and the log
file for a bug — never a traceback on the terminal."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from crossway import cli


def _parser_with(handler: object) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crossway")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("boom").set_defaults(handler=handler)
    return parser


def test_an_unexpected_error_prints_internal_and_where_the_traceback_is(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: argparse.Namespace) -> int:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "_build_parser", lambda: _parser_with(broken))
    assert cli.main(["boom"]) == 1
    err = capsys.readouterr().err
    first, second = err.splitlines()
    assert first == "error[internal]: unexpected ZeroDivisionError in `crossway boom`"
    log = Path(second.split("the details are in ", 1)[1].split(" (include", 1)[0])
    try:
        text = log.read_text()
        assert "Traceback" in text and "ZeroDivisionError: a bug" in text
        assert log.stat().st_mode & 0o077 == 0  # private to the user
    finally:
        log.unlink()
    assert "Traceback" not in err


def test_an_expected_error_prints_its_code_and_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from crossway.core.errors import ConfigError

    def refuses(args: argparse.Namespace) -> int:
        raise ConfigError("the file is wrong", hint="fix it")

    monkeypatch.setattr(cli, "_build_parser", lambda: _parser_with(refuses))
    assert cli.main(["boom"]) == 1
    assert capsys.readouterr().err == "error[config.invalid]: the file is wrong\n  hint: fix it\n"
