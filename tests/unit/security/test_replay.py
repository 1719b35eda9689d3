from __future__ import annotations

import pytest

from crossway.security.replay import MemoryReplayGuard, ReplayGuard

NOW = 1_700_000_000_000


def test_the_first_sight_of_an_id_is_accepted_and_the_second_is_rejected() -> None:
    guard: ReplayGuard = MemoryReplayGuard()
    assert guard.seen_before("msg-1", NOW + 60_000, NOW) is False
    assert guard.seen_before("msg-1", NOW + 60_000, NOW + 1) is True
    assert guard.seen_before("msg-2", NOW + 60_000, NOW + 1) is False


def test_a_replay_with_a_later_expiry_is_still_rejected() -> None:
    guard = MemoryReplayGuard()
    guard.seen_before("msg-1", NOW + 1_000, NOW)
    assert guard.seen_before("msg-1", NOW + 999_000, NOW + 500) is True


def test_an_id_is_forgotten_once_it_expires() -> None:
    guard = MemoryReplayGuard()
    guard.seen_before("msg-1", NOW + 1_000, NOW)
    assert guard.seen_before("msg-1", NOW + 1_000, NOW + 999) is True
    assert len(guard) == 1
    # At the expiry instant the id is dropped; the caller's time-window check rejects old messages.
    assert guard.seen_before("msg-1", NOW + 5_000, NOW + 1_000) is False
    assert len(guard) == 1


def test_expired_ids_are_evicted_so_memory_stays_bounded() -> None:
    guard = MemoryReplayGuard(max_entries=100)
    for i in range(10_000):
        now = NOW + i * 10
        assert guard.seen_before(f"msg-{i}", now + 500, now) is False
        assert len(guard) <= 50


def test_a_full_guard_rejects_new_ids_instead_of_evicting_live_ones() -> None:
    guard = MemoryReplayGuard(max_entries=3)
    for i in range(3):
        assert guard.seen_before(f"msg-{i}", NOW + 60_000, NOW) is False
    # Full of unexpired ids: fail closed, and the remembered ids stay remembered.
    assert guard.seen_before("msg-new", NOW + 60_000, NOW) is True
    assert guard.seen_before("msg-0", NOW + 60_000, NOW) is True
    assert len(guard) == 3
    # Once they expire there is room again.
    assert guard.seen_before("msg-new", NOW + 120_000, NOW + 60_000) is False


def test_an_already_expired_message_is_rejected_and_not_stored() -> None:
    guard = MemoryReplayGuard()
    assert guard.seen_before("msg-1", NOW - 1, NOW) is True
    assert len(guard) == 0


def test_the_guard_needs_room_for_at_least_one_id() -> None:
    with pytest.raises(ValueError):
        MemoryReplayGuard(max_entries=0)
