"""A policy bundle: every policy file of a directory, validated, sliced per service, immutable.

A bundle is built once (at start-up, or when a new version is applied) and then only read,
so a decision point can swap one in with a single reference assignment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import cedarpy

from crossway.core.ids import MethodId, ServiceId
from policies.errors import PolicyInvalid
from policies.groups import LOCAL_GROUPS_FILE, parse_local_groups
from policies.loading import LoadedPolicy, load_policy_text
from policies.schema import action_id, schema_text
from policies.slicing import ServiceSlice, build_slice, slice_policies

__all__ = ["POLICY_SUFFIX", "PolicyBundle", "load_policy_dir"]

POLICY_SUFFIX = ".cedar"


@dataclass(frozen=True, slots=True, eq=False)
class PolicyBundle:
    """Validated policies for the methods a gateway serves. Build with ``from_texts`` or ``load_policy_dir``."""

    version: str
    policies: tuple[LoadedPolicy, ...]
    schema: cedarpy.Schema
    slices: Mapping[ServiceId, ServiceSlice]
    # member or subsystem id -> names of the local groups listing it
    local_groups: Mapping[str, frozenset[str]]

    def __repr__(self) -> str:
        return f"PolicyBundle(version={self.version!r}, policies={len(self.policies)}, services={len(self.slices)})"

    @classmethod
    def from_texts(
        cls,
        files: Mapping[str, str],
        methods: Iterable[MethodId],
        *,
        version: str = "local",
        sliced: bool = True,
    ) -> PolicyBundle:
        """Build from ``{file name: text}``: ``*.cedar`` policy files and an optional ``local-groups.json``.

        ``sliced=False`` gives every service the whole policy set; it exists so tests can
        check that slicing never changes a decision.
        """
        method_list = sorted(set(methods))
        if not method_list:
            raise PolicyInvalid("no methods given", hint="pass the methods this gateway serves")
        schema_source = schema_text(method_list)
        try:
            schema = cedarpy.Schema.from_str(schema_source)
        except ValueError as exc:  # only reachable if crossway.cedarschema itself is broken
            raise PolicyInvalid(f"crossway.cedarschema: {exc}", hint="restore the shipped schema file") from exc
        action_ids = sorted({action_id(m) for m in method_list})

        policies: list[LoadedPolicy] = []
        local_groups: Mapping[str, frozenset[str]] = MappingProxyType({})
        for name in sorted(files):
            if name == LOCAL_GROUPS_FILE:
                local_groups = parse_local_groups(name, files[name])
            elif name.endswith(POLICY_SUFFIX):
                policies.extend(load_policy_text(name, files[name], schema, action_ids))
            else:
                raise PolicyInvalid(
                    f"{name}: not a policy file",
                    hint=f"policy files end in {POLICY_SUFFIX}; local groups go in {LOCAL_GROUPS_FILE}",
                )
        _check_unique(policies)

        by_service: dict[ServiceId, frozenset[str]] = {}
        for method in method_list:
            by_service[method.service] = by_service.get(method.service, frozenset()) | {method.name}
        chosen = slice_policies(policies, by_service) if sliced else dict.fromkeys(by_service, policies)
        slices = {svc: build_slice(svc, names, chosen[svc]) for svc, names in by_service.items()}
        return cls(
            version=version,
            policies=tuple(policies),
            schema=schema,
            slices=MappingProxyType(slices),
            local_groups=local_groups,
        )


def _check_unique(policies: list[LoadedPolicy]) -> None:
    # Ids go into audit records: two policies with one id would make the record ambiguous.
    seen: dict[str, LoadedPolicy] = {}
    for policy in policies:
        first = seen.setdefault(policy.id, policy)
        if first is not policy:
            raise PolicyInvalid(
                f"{policy.file}:{policy.line}: duplicate policy id {policy.id!r} "
                f"(first used at {first.file}:{first.line})",
                hint='give each policy its own @id("...")',
            )


def read_policy_dir(path: Path) -> dict[str, str]:
    """The bundle's files in ``path`` (not recursive): ``*.cedar`` and ``local-groups.json``."""
    if not path.is_dir():
        raise PolicyInvalid(f"{path}: not a directory", hint="point the gateway at its policy directory")
    files = {p.name: p.read_text(encoding="utf-8") for p in sorted(path.glob(f"*{POLICY_SUFFIX}")) if p.is_file()}
    groups = path / LOCAL_GROUPS_FILE
    if groups.is_file():
        files[LOCAL_GROUPS_FILE] = groups.read_text(encoding="utf-8")
    return files


def load_policy_dir(path: Path, methods: Iterable[MethodId], *, version: str = "local") -> PolicyBundle:
    """Load and validate every policy file in ``path``; raises ``PolicyInvalid`` naming file:line."""
    return PolicyBundle.from_texts(read_policy_dir(path), methods, version=version)
