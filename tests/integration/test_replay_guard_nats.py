"""The NATS KV replay window on its own: create-if-absent across guards, fail closed without a bucket."""

from __future__ import annotations

import time
from pathlib import Path

from crossway.backbone import replay_bucket
from crossway.natsclient import NatsAccess
from crossway.natslocal import LocalBackbone
from crossway.natsreplay import NatsReplayGuard
from crossway.security.natspki import NatsIdentity

MEMBER = "EE/GOV/70000002"


async def test_an_id_seen_by_one_gateway_is_a_replay_for_the_other(tmp_path: Path) -> None:
    async with LocalBackbone(tmp_path / "nats", members=[MEMBER], replay_window_s=60) as backbone:
        accesses = [await backbone.grant(NatsIdentity.gateway(f"{MEMBER}/gw{i}")) for i in (1, 2)]
        guards = [NatsReplayGuard(a, replay_bucket(MEMBER)) for a in accesses]
        for guard in guards:
            await guard.start()
        try:
            now = int(time.time() * 1000)
            assert guards[0].seen_before("EE/GOV/70000001|m1", now + 60_000, now) is False
            assert guards[1].seen_before("EE/GOV/70000001|m1", now + 60_000, now) is True
            assert guards[0].seen_before("EE/GOV/70000001|m1", now + 60_000, now) is True
            assert guards[1].seen_before("EE/GOV/70000001|m2", now + 60_000, now) is False
            assert guards[1].seen_before("EE/GOV/70000001|m3", now - 1, now) is True  # past its window
        finally:
            for guard in guards:
                await guard.aclose()


async def test_without_its_bucket_the_guard_refuses_every_message(nats_server: LocalBackbone) -> None:
    access: NatsAccess = await nats_server.grant(NatsIdentity.gateway(f"{MEMBER}/gw1"))
    guard = NatsReplayGuard(access, replay_bucket(MEMBER), timeout_s=0.5)  # never provisioned
    await guard.start()
    try:
        now = int(time.time() * 1000)
        assert guard.seen_before("EE/GOV/70000001|m1", now + 60_000, now) is True
    finally:
        await guard.aclose()


async def test_a_gateway_cannot_write_another_members_replay_window(tmp_path: Path) -> None:
    other = "EE/GOV/70000001"
    async with LocalBackbone(tmp_path / "nats", members=[MEMBER, other], replay_window_s=60) as backbone:
        intruder = await backbone.grant(NatsIdentity.gateway(f"{other}/gw1"))
        guard = NatsReplayGuard(intruder, replay_bucket(MEMBER), timeout_s=0.5)  # to pre-empt MEMBER's ids
        victim = NatsReplayGuard(await backbone.grant(NatsIdentity.gateway(f"{MEMBER}/gw1")), replay_bucket(MEMBER))
        await guard.start()
        await victim.start()
        try:
            now = int(time.time() * 1000)
            assert guard.seen_before("x|m1", now + 60_000, now) is True  # refused: no write permission
            assert victim.seen_before("x|m1", now + 60_000, now) is False  # so the real message still passes
        finally:
            await guard.aclose()
            await victim.aclose()
