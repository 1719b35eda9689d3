"""Where each policy sits in its file, for error messages that name ``file:line``.

Cedar reports validation errors by positional policy id (``policy3``) and parse errors with
no position at all, so the loader needs its own map from policy number to source lines. A
policy ends at a ``;`` outside string literals and ``//`` comments — Cedar's grammar has no
other use for ``;`` — which makes a small scanner enough; no second Cedar parser is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Span", "line_at", "line_of", "split_policies"]


@dataclass(frozen=True, slots=True)
class Span:
    """One policy's text: ``start``/``end`` are offsets into the file, ``line`` is 1-based."""

    start: int
    end: int
    line: int


def split_policies(text: str) -> list[Span]:
    """The spans of the policies in ``text``, in file order (the order Cedar numbers them)."""
    spans: list[Span] = []
    start: int | None = None  # offset of the current policy's first significant character
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "/" and text.startswith("//", i):
            nl = text.find("\n", i)
            i = n if nl < 0 else nl
            continue
        if ch.isspace():
            i += 1
            continue
        if start is None:
            start = i
        if ch == '"':
            i = _skip_string(text, i)
            continue
        if ch == ";":
            spans.append(Span(start, i + 1, line_at(text, start)))
            start = None
        i += 1
    if start is not None:  # trailing text without ';' — a syntax error Cedar will report
        spans.append(Span(start, n, line_at(text, start)))
    return spans


def _skip_string(text: str, i: int) -> int:
    """The offset just past the string literal opening at ``i`` (backslash escapes honoured)."""
    i += 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i + 1
        i += 1
    return i


def line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def line_of(text: str, span: Span, needle: str) -> int:
    """The line of the first ``needle`` inside ``span``, else the span's first line."""
    if needle:
        found = text.find(needle, span.start, span.end)
        if found >= 0:
            return line_at(text, found)
    return span.line
