"""Unknown keys in a TOML file Crossway reads are an error, never a silent default.

``algorithm = "ES256"`` where the key is ``algorithms`` would otherwise start cleanly with the
default list; an operator reading the file believes the opposite of what runs. Every loader
names the keys each table may hold and calls :func:`check_keys`; the error names the file, the
table and the key, and suggests the nearest known key (``difflib``, as Python's own
``NameError`` does).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from crossway.core.errors import ConfigError

__all__ = ["check_keys", "unknown_key_error"]


def unknown_key_error(source: Path | str, where: str, key: str, known: Iterable[str]) -> ConfigError:
    """The error for one unknown ``key`` of table ``where`` (e.g. "client_auth.jwt", "top") of ``source``."""
    names = sorted(known)
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    listing = ", ".join(names) if names else "none"
    hint = f"did you mean `{close[0]}`? (known keys: {listing})" if close else f"known keys: {listing}"
    return ConfigError(f"{source}: [{where}] {key}: unknown key", hint=hint)


def check_keys(table: Mapping[str, Any], known: Iterable[str], *, source: Path | str, where: str) -> None:
    """Raise :class:`ConfigError` for the first key of ``table`` that is not in ``known``."""
    allowed = set(known)
    for key in table:
        if key not in allowed:
            raise unknown_key_error(source, where, key, allowed)
