"""Canonical formatting of policy files (``crossway policies fmt``)."""

from __future__ import annotations

from pathlib import Path

import cedarpy

from policies.bundle import POLICY_SUFFIX
from policies.errors import PolicyInvalid
from policies.loading import syntax_error

__all__ = ["format_policy_dir", "format_policy_text"]

LINE_WIDTH = 100
INDENT = 2


def format_policy_text(file: str, text: str) -> str:
    """``text`` in Cedar's canonical layout (comments kept); raises ``PolicyInvalid`` on a syntax error."""
    try:
        return cedarpy.format_policies(text, LINE_WIDTH, INDENT)
    except ValueError as exc:
        raise syntax_error(file, text, str(exc)) from exc


def format_policy_dir(path: Path) -> dict[str, str]:
    """``{file name: formatted text}`` for every ``*.cedar`` file in ``path``; writes nothing."""
    if not path.is_dir():
        raise PolicyInvalid(f"{path}: not a directory", hint="point at a policy directory")
    return {
        p.name: format_policy_text(p.name, p.read_text(encoding="utf-8"))
        for p in sorted(path.glob(f"*{POLICY_SUFFIX}"))
        if p.is_file()
    }
