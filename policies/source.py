"""Where each policy sits in its file, for error messages that name ``file:line``.

Cedar reports validation errors by positional policy id (``policy3``) and parse errors with
no position at all, so the loader needs its own map from policy number to source lines. A
policy ends at a ``;`` outside string literals and ``//`` comments — Cedar's grammar has no
other use for ``;`` — which makes a small scanner enough; no second Cedar parser is needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Span", "line_at", "line_of", "split_policies"]

# Comments, string literals (with backslash escapes; an unterminated one runs to the end),
# the ';' that ends a policy, and runs of any other significant characters.
_TOKEN = re.compile(r'(?P<comment>//[^\n]*)|(?P<string>"(?:\\.|[^"\\])*"?)|(?P<end>;)|(?P<other>[^\s/";]+|/)')


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
    line, counted = 1, 0  # line numbers are counted incrementally: files may hold thousands
    for token in _TOKEN.finditer(text):
        kind = token.lastgroup
        if kind == "comment":
            continue
        if start is None:
            start = token.start()
            line += text.count("\n", counted, start)
            counted = start
        if kind == "end":
            spans.append(Span(start, token.end(), line))
            start = None
    if start is not None:  # trailing text without ';' — a syntax error Cedar will report
        spans.append(Span(start, len(text), line))
    return spans


def line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def line_of(text: str, span: Span, needle: str) -> int:
    """The line of the first ``needle`` inside ``span``, else the span's first line."""
    if needle:
        found = text.find(needle, span.start, span.end)
        if found >= 0:
            return line_at(text, found)
    return span.line
