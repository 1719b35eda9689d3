"""The replay window shared by a gateway's worker processes (one SQLite file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossway.core.errors import ConfigError
from crossway.security.shared_replay import SharedReplayGuard


def test_an_id_seen_by_one_worker_is_a_replay_for_another(tmp_path: Path) -> None:
    first, second = SharedReplayGuard(tmp_path / "w.sqlite"), SharedReplayGuard(tmp_path / "w.sqlite")
    assert first.seen_before("EE/GOV/1|m1", 2_000, 1_000) is False
    assert second.seen_before("EE/GOV/1|m1", 2_000, 1_500) is True
    assert first.seen_before("EE/GOV/1|m1", 2_000, 1_600) is True


def test_an_expired_entry_makes_room_for_the_id_again(tmp_path: Path) -> None:
    guard = SharedReplayGuard(tmp_path / "w.sqlite")
    assert guard.seen_before("m", 2_000, 1_000) is False
    assert guard.seen_before("m", 5_000, 3_000) is False  # the old window is over
    assert guard.seen_before("m", 5_000, 3_500) is True


def test_an_id_already_past_its_window_is_refused(tmp_path: Path) -> None:
    assert SharedReplayGuard(tmp_path / "w.sqlite").seen_before("m", 1_000, 1_000) is True


def test_a_broken_database_fails_closed(tmp_path: Path) -> None:
    guard = SharedReplayGuard(tmp_path / "w.sqlite")
    guard.close()
    assert guard.seen_before("m", 2_000, 1_000) is True


def test_the_window_survives_the_process_that_wrote_it(tmp_path: Path) -> None:
    # A gateway restart: the old guard is gone, a new one opens the same file.
    before = SharedReplayGuard(tmp_path / "w.sqlite")
    assert before.seen_before("EE/GOV/1|m1", 60_000, 1_000) is False
    before.close()
    after = SharedReplayGuard(tmp_path / "w.sqlite")
    assert after.seen_before("EE/GOV/1|m1", 60_000, 2_000) is True


def test_a_damaged_window_file_stops_the_start_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "w.sqlite"
    path.write_bytes(b"this is not a SQLite database, it was damaged" * 100)
    with pytest.raises(ConfigError) as raised:
        SharedReplayGuard(path)
    assert str(path) in raised.value.message and "max_clock_skew_s" in raised.value.hint
