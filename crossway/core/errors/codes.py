"""Rebuilding an error from its stable code (a peer's error arrives as its code)."""

from __future__ import annotations

from crossway.core.errors.base import CrosswayError
from crossway.core.errors.upstream import UpstreamFailed

__all__ = ["error_class_for_code"]

# The package whose modules hold the core tree.
_CORE = __name__.rpartition(".")[0]


def _all_subclasses(cls: type[CrosswayError]) -> list[type[CrosswayError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_all_subclasses(sub))
    return out


def _in_core(cls: type[CrosswayError]) -> bool:
    return cls.__module__ == _CORE or cls.__module__.startswith(_CORE + ".")


def _home(cls: type[CrosswayError]) -> str:
    """Where a class is defined; the core tree's modules count as one home."""
    return _CORE if _in_core(cls) else cls.__module__


_BY_CODE: dict[str, type[CrosswayError]] = {}


def _index() -> None:
    # Walked again on a miss: areas define their own subclasses (e.g. policy.invalid) after import.
    # The classes of this package win for their codes, whatever is imported later or in what
    # order: a peer's `message.malformed` must be rebuilt as MessageMalformed, deterministically.
    core = [c for c in _all_subclasses(CrosswayError) if _in_core(c)]
    others = [c for c in _all_subclasses(CrosswayError) if not _in_core(c)]
    for group in (core, others):
        for cls in group:
            # Within one home the most derived class wins over an abstract parent of the same code
            # (InternalError over CrosswayError for `internal`).
            known = _BY_CODE.get(cls.code)
            if known is None or (_home(known) == _home(cls) and issubclass(cls, known)):
                _BY_CODE[cls.code] = cls


def error_class_for_code(code: str) -> type[CrosswayError]:
    """The error class for a stable code (used to rebuild a peer's error); unknown → UpstreamFailed."""
    cls = _BY_CODE.get(code)
    if cls is None:
        _index()
        cls = _BY_CODE.get(code, UpstreamFailed)
    return cls
