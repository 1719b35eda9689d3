"""Slicing per service keeps only policies that can apply, and never changes a decision."""

from __future__ import annotations

import random

from crossway.core.ids import MethodId, SubsystemId
from policies import AccessRequest, CedarDecisionPoint, PolicyBundle

SERVICES = [f"EE/GOV/7{i:07d}/sub{i % 3}/svc{i}.v1.Api" for i in range(20)]
METHODS = [MethodId.parse(f"{svc}/{m}") for svc in SERVICES for m in ("Get", "List", "Put")]
MEMBERS = ["EE/GOV/70000001", "EE/GOV/70000002", "EE/COM/10000003", "FI/GOV/20000004"]
CLIENTS = [f"{m}/{s}" for m in MEMBERS for s in ("app", "batch")]
GROUPS = ["health", "tax", "police"]


def _policy(rng: random.Random, n: int) -> str:
    svc = rng.choice(SERVICES)
    grpc = svc.rsplit("/", 1)[1]
    effect = "forbid" if rng.random() < 0.1 else "permit"
    # Every policy names a principal, so some calls match no permit (default deny is exercised).
    principal = rng.choice(
        [
            f'principal == Crossway::Subsystem::"{rng.choice(CLIENTS)}"',
            f'principal == Crossway::Subsystem::"{rng.choice(CLIENTS)}"',
            f'principal in Crossway::Member::"{rng.choice(MEMBERS)}"',
            f'principal in Crossway::Group::"{rng.choice(GROUPS)}"',
        ]
    )
    action = rng.choice(
        [
            "action",
            f'action == Crossway::Action::"{grpc}/{rng.choice(["Get", "List", "Put"])}"',
            f'action in Crossway::Action::"{grpc}/*"',
            f'action in [Crossway::Action::"{grpc}/Get", Crossway::Action::"{grpc}/List"]',
        ]
    )
    resource = rng.choice(["resource", f'resource == Crossway::Service::"{svc}"', "resource is Crossway::Service"])
    condition = rng.choice(
        [
            "",
            ' when { context.purpose == "audit" }',
            " when { context.hour_utc < 12 }",
            ' unless { context.client.member_class == "COM" }',
            # errors at run time for late hours: exercises error equivalence too
            " when { context.hour_utc < 20 || context.time + 9223372036854775807 > 0 }",
        ]
    )
    return f'@id("p{n}")\n{effect} ({principal}, {action}, {resource}){condition};\n'


def _bundles(seed: int, count: int) -> tuple[PolicyBundle, PolicyBundle]:
    rng = random.Random(seed)
    files = {f"f{k}.cedar": "".join(_policy(rng, k * 1000 + n) for n in range(count // 4)) for k in range(4)}
    sliced = PolicyBundle.from_texts(files, METHODS)
    whole = PolicyBundle.from_texts(files, METHODS, sliced=False)
    return sliced, whole


def test_each_slice_holds_only_a_fraction_of_the_policies() -> None:
    sliced, whole = _bundles(seed=1, count=200)
    sizes = [len(s.policy_ids) for s in sliced.slices.values()]
    assert all(len(s.policy_ids) == 200 for s in whole.slices.values())
    assert max(sizes) < 100  # unconstrained policies go everywhere; the rest spread over 20 services


def test_slicing_returns_the_same_decisions_as_the_whole_set() -> None:
    outcomes = set()
    for seed in range(3):
        sliced, whole = _bundles(seed=seed, count=200)
        fast, slow = CedarDecisionPoint(sliced), CedarDecisionPoint(whole)
        rng = random.Random(seed + 100)
        for _ in range(400):
            request = AccessRequest(
                client=SubsystemId.parse(rng.choice(CLIENTS)),
                client_groups=frozenset(rng.sample(GROUPS, rng.randint(0, 2))),
                method=rng.choice(METHODS),
                purpose=rng.choice(["", "audit"]),
                now_ms=rng.randrange(0, 86_400_000),
            )
            a, b = fast.decide(request), slow.decide(request)
            assert (a.allowed, a.policy_ids, a.reason, sorted(a.errors)) == (
                b.allowed,
                b.policy_ids,
                b.reason,
                sorted(b.errors),
            ), request
            outcomes.add(a.reason.split(" ")[0])
    # The generated sets must exercise allows, forbids, failed forbids and default denies.
    assert {"permitted", "forbidden", "forbid", "no"} <= outcomes
