"""Parse and strictly validate one policy file, naming ``file:line`` on any error.

Numbered steps, each failing the whole load (a half-loaded policy set could allow what the
author meant to forbid):

1. parse the file (a syntax error names the policy's line and the offending token);
2. refuse templates (``?principal`` slots): bundles hold only static policies;
3. give every policy its id: the ``@id("…")`` annotation, else ``<file stem>#<n>`` (1-based),
   and read its obligations (``@fields``, ``@quota``; a malformed one names its line);
4. validate strictly against the schema, which types every context attribute and has one
   action per served method — a misspelt attribute or method is an error here, not a silent
   never-matching policy in production.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

import cedarpy
from cedarpy import pst

from policies.errors import PolicyInvalid
from policies.obligations import NO_OBLIGATIONS, Obligations, parse_obligations
from policies.schema import CONTEXT_ATTRIBUTES, ENTITY_TYPES
from policies.source import Span, line_of, split_policies

__all__ = ["LoadedPolicy", "load_policy_text", "syntax_error"]

_TICKED = re.compile(r"`([^`]+)`")
_FOR_POLICY = re.compile(r"^for policy `[^`]*`, ")
_POSITIONAL = re.compile(r"policy(\d+)")


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    """One validated policy; ``template.id`` is already the Crossway id (so Cedar reports it)."""

    id: str
    file: str
    line: int
    template: pst.Template
    # The policy's own source text (for the context attributes it mentions) and its
    # obligations from annotations (see ``policies.obligations``).
    source: str = ""
    obligations: Obligations = NO_OBLIGATIONS

    @property
    def effect(self) -> str:
        return self.template.effect


def load_policy_text(file: str, text: str, schema: cedarpy.Schema, action_ids: Sequence[str]) -> list[LoadedPolicy]:
    """The policies of one file, validated; raises ``PolicyInvalid`` naming ``file:line``."""
    spans = split_policies(text)
    # 1. Parse.
    try:
        tree = cedarpy.PolicySet.from_str(text).to_pst()
    except ValueError as exc:
        raise syntax_error(file, text, str(exc), spans) from exc
    # 2. Static policies only.
    if tree.templates:
        first = min(_position(tid) for tid in tree.templates)
        line = spans[first].line if first < len(spans) else 1
        raise PolicyInvalid(
            f"{file}:{line}: a policy template (?principal or ?resource slot)",
            hint="write a static policy naming the principal or resource; templates are not supported",
        )
    # 3. Ids, in file order (Cedar numbers surface-syntax policies policy0, policy1, ...).
    stem = PurePath(file).stem
    loaded: list[LoadedPolicy] = []
    for n in range(len(tree.static_policies)):
        template = tree.static_policies[f"policy{n}"]
        line = spans[n].line if n < len(spans) else 1
        policy_id = template.annotations.get("id", f"{stem}#{n + 1}")
        if not policy_id.strip():
            raise PolicyInvalid(f"{file}:{line}: empty @id annotation", hint='write @id("some-name") or drop it')
        source = text[spans[n].start : spans[n].end] if n < len(spans) else text
        obligations = parse_obligations(file, line, template.annotations, template.effect)
        loaded.append(
            LoadedPolicy(policy_id, file, line, dataclasses.replace(template, id=policy_id), source, obligations)
        )
    # 4. Strict validation against the generated schema.
    # Validation is the slow part of a load (~1.5 ms a policy): let other threads run meanwhile.
    result = cedarpy.validate_policies(text, schema, release_gil=True)
    if not result.validation_passed:
        raise _validation_error(file, text, spans, loaded, result.errors, action_ids)
    return loaded


def _position(cedar_id: str) -> int:
    match = _POSITIONAL.fullmatch(cedar_id)
    return int(match.group(1)) if match else 0


def syntax_error(file: str, text: str, message: str, spans: list[Span] | None = None) -> PolicyInvalid:
    """A ``PolicyInvalid`` for a Cedar syntax error, naming the failing policy's line."""
    # Cedar's parse errors carry no position: re-parse policy by policy to find the culprit.
    for span in split_policies(text) if spans is None else spans:
        try:
            cedarpy.PolicySet.from_str(text[span.start : span.end])
        except ValueError as exc:
            detail = str(exc)
            token = _TICKED.search(detail)
            line = line_of(text, span, token.group(1) if token else "")
            return PolicyInvalid(
                f"{file}:{line}: syntax error: {detail}",
                hint="a policy reads `permit|forbid (principal, action, resource) when { ... };`",
            )
    return PolicyInvalid(f"{file}:1: syntax error: {message}", hint="check the file is Cedar policy text")


def _validation_error(
    file: str,
    text: str,
    spans: list[Span],
    loaded: list[LoadedPolicy],
    errors: Sequence[cedarpy.ValidationError],
    action_ids: Sequence[str],
) -> PolicyInvalid:
    lines: list[str] = []
    hints: list[str] = []
    for error in errors:
        n = _position(error.policy_id)
        span = spans[n] if n < len(spans) else Span(0, len(text), 1)
        policy = loaded[n].id if n < len(loaded) else error.policy_id
        detail = _FOR_POLICY.sub("", error.error)
        names = _TICKED.findall(detail)
        name = names[0] if names else ""
        line = line_of(text, span, _needle(name))
        lines.append(f"{file}:{line}: policy {policy}: {detail}")
        hints.append(_hint(detail, name, action_ids))
    # The first error's hint is the one to act on; the others usually follow from it.
    hint = next((h for h in hints if h), "see policies/crossway.cedarschema for the types a policy may use")
    return PolicyInvalid("\n".join(lines), hint=hint)


def _needle(name: str) -> str:
    """What to look for in the policy text to find the line of an offending name."""
    if '"' in name:  # an entity uid such as Crossway::Action::"svc/Method": its quoted id
        return name[name.index('"') :]
    return name.rsplit(".", 1)[-1].rsplit("::", 1)[-1]


def _did_you_mean(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(f'`{c}`' for c in close)}?" if close else ""


def _hint(detail: str, name: str, action_ids: Sequence[str]) -> str:
    if "in context" in detail and "not found" in detail:
        top = name.split(".", 1)[0]
        if top in CONTEXT_ATTRIBUTES:
            return f"`{top}` has no attribute `{name.split('.', 1)[-1]}`; see CallContext in crossway.cedarschema"
        return f"context has {', '.join(CONTEXT_ATTRIBUTES)}" + _did_you_mean(name, CONTEXT_ATTRIBUTES)
    if detail.startswith("unrecognized action"):
        wanted = name.split('"')[1] if name.count('"') >= 2 else name
        served = ", ".join(action_ids[:5]) + (", ..." if len(action_ids) > 5 else "")
        return f"unknown method `{wanted}`; this gateway serves {served}" + _did_you_mean(wanted, action_ids)
    if detail.startswith("unrecognized entity type"):
        return f"entity types are {', '.join(ENTITY_TYPES)}" + _did_you_mean(name, ENTITY_TYPES)
    if "guarantee safety of access to tag" in detail:
        return 'guard a claim before reading it: context.user.hasTag("x") && context.user.getTag("x") == ...'
    if "on entity type" in detail and "not found" in detail:
        return "entity attributes are declared in policies/crossway.cedarschema"
    return ""
