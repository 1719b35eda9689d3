"""Time ``decide`` with 1,000 policies over 100 services; prints p50/p99 in µs.

    .venv/bin/python -m bench.policy_decisions

Figures are printed, never asserted: they depend on the machine.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass

from crossway.core.ids import MethodId, SubsystemId
from policies.bundle import PolicyBundle
from policies.decision import AccessRequest
from policies.point import CedarDecisionPoint

SERVICES = 100
POLICIES = 1_000
METHODS_PER_SERVICE = 5
CALLS = 20_000


def _workload(rng: random.Random) -> tuple[list[MethodId], dict[str, str], list[str]]:
    services = [f"EE/GOV/7{i:07d}/sub/svc{i}.v1.Api" for i in range(SERVICES)]
    methods = [MethodId.parse(f"{s}/M{m}") for s in services for m in range(METHODS_PER_SERVICE)]
    clients = [f"EE/GOV/1{i:07d}/app" for i in range(200)]
    lines = []
    for n in range(POLICIES):
        svc = services[n % SERVICES]
        grpc = svc.rsplit("/", 1)[1]
        action = rng.choice([f'action in Crossway::Action::"{grpc}/*"', f'action == Crossway::Action::"{grpc}/M0"'])
        condition = rng.choice(["", ' when { context.purpose == "audit" }', " when { context.hour_utc < 18 }"])
        effect = "forbid" if n % 10 == 9 else "permit"
        lines.append(
            f'@id("p{n}")\n{effect} (principal == Crossway::Subsystem::"{rng.choice(clients)}", {action}, '
            f'resource == Crossway::Service::"{svc}"){condition};\n'
        )
    return methods, {"bench.cedar": "".join(lines)}, clients


@dataclass(frozen=True, slots=True)
class DecisionBench:
    policies: int
    services: int
    load_ms: float
    policies_per_slice: float
    calls: int
    p50_us: float
    p99_us: float


def measure(calls: int = CALLS) -> DecisionBench:
    """Build the 1,000-policy bundle and time ``calls`` decisions (used by ``make bench`` too)."""
    rng = random.Random(7)
    methods, files, clients = _workload(rng)
    started = time.perf_counter()
    bundle = PolicyBundle.from_texts(files, methods, version="bench")
    load_ms = (time.perf_counter() - started) * 1000
    point = CedarDecisionPoint(bundle)
    requests = [
        AccessRequest(
            client=SubsystemId.parse(rng.choice(clients)),
            client_groups=frozenset({"gov"}),
            method=rng.choice(methods),
            purpose=rng.choice(["", "audit"]),
            user_id="EE38001010000",
            user_claims={"role": "officer", "loa": 3},
            now_ms=1_700_000_000_000,
        )
        for _ in range(1_000)
    ]
    for request in requests:  # warm up
        point.decide(request)
    samples = []
    for i in range(calls):
        request = requests[i % len(requests)]
        t0 = time.perf_counter_ns()
        point.decide(request)
        samples.append((time.perf_counter_ns() - t0) / 1000)
    samples.sort()
    return DecisionBench(
        policies=POLICIES,
        services=SERVICES,
        load_ms=load_ms,
        policies_per_slice=statistics.mean(len(s.policy_ids) for s in bundle.slices.values()),
        calls=calls,
        p50_us=samples[len(samples) // 2],
        p99_us=samples[int(len(samples) * 0.99)],
    )


def main() -> None:
    r = measure()
    print(f"bundle: {r.policies} policies over {r.services} services, loaded in {r.load_ms:.0f} ms")
    print(f"policies per service slice: {r.policies_per_slice:.1f} on average")
    print(f"decide over {r.calls} calls: p50 {r.p50_us:.1f} µs, p99 {r.p99_us:.1f} µs")


if __name__ == "__main__":
    main()
