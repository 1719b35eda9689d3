"""Quotas: the token buckets in memory and shared by a gateway's worker processes (one SQLite file)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from crossway.core.errors import ConfigError, PolicyUnavailable, RateLimited
from gateway.provider.quotas import QuotaLimiter, Quotas, SharedQuotaLimiter
from policies import Quota

CLIENT = "EE/GOV/70000002/tax"
METHOD = "population.v1.PersonRegistry/GetPerson"
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def shared_files(tmp_path: Path) -> Iterator[Callable[[], SharedQuotaLimiter]]:
    """Limiters on one file, as each worker process would open it; closed after the test."""
    opened: list[SharedQuotaLimiter] = []

    def open_one() -> SharedQuotaLimiter:
        opened.append(SharedQuotaLimiter(tmp_path / "quotas.sqlite"))
        return opened[-1]

    yield open_one
    for limiter in opened:
        limiter.close()


@pytest.fixture(params=["memory", "shared"])
def limiter(request: pytest.FixtureRequest, shared_files: Callable[[], SharedQuotaLimiter]) -> Quotas:
    return QuotaLimiter() if request.param == "memory" else shared_files()


def _successes(limiter: Quotas, quotas: tuple[Quota, ...], attempts: int, now_ms: int) -> int:
    won = 0
    for _ in range(attempts):
        try:
            limiter.take(CLIENT, METHOD, quotas, now_ms)
        except RateLimited:
            continue
        won += 1
    return won


def test_a_burst_of_the_limit_passes_then_the_call_is_refused_with_a_retry_after(limiter: Quotas) -> None:
    quota = (Quota("tax-lookup", 2, 60),)
    limiter.take(CLIENT, METHOD, quota, 1_000)
    limiter.take(CLIENT, METHOD, quota, 1_000)
    with pytest.raises(RateLimited) as info:
        limiter.take(CLIENT, METHOD, quota, 1_000)
    # One token comes back every 30 s.
    assert info.value.code == "policy.rate_limited"
    assert info.value.message == (f"{CLIENT} exceeded the quota of {METHOD} under tax-lookup (2/60s); retry after 30 s")
    assert info.value.hint == "retry after 30 s, or ask the service owner for a higher @quota"


def test_no_quotas_take_nothing(limiter: Quotas) -> None:
    for _ in range(10):
        limiter.take(CLIENT, METHOD, (), 1_000)


def test_buckets_are_per_client_and_method(limiter: Quotas) -> None:
    quota = (Quota("p", 1, 60),)
    limiter.take(CLIENT, METHOD, quota, 1_000)
    limiter.take("EE/GOV/70000003/other", METHOD, quota, 1_000)
    limiter.take(CLIENT, "population.v1.PersonRegistry/Other", quota, 1_000)
    with pytest.raises(RateLimited):
        limiter.take(CLIENT, METHOD, quota, 1_000)


def test_a_call_needs_a_token_from_every_quota_and_a_refusal_takes_none(limiter: Quotas) -> None:
    roomy, tight = Quota("roomy", 10, 60), Quota("tight", 1, 60)
    limiter.take(CLIENT, METHOD, (roomy, tight), 1_000)
    for _ in range(5):
        with pytest.raises(RateLimited) as info:
            limiter.take(CLIENT, METHOD, (roomy, tight), 1_000)
    assert "under roomy (10/60s), tight (1/60s); retry after 60 s" in info.value.message
    # The refused calls took nothing from "roomy": 9 of its 10 tokens are left.
    assert _successes(limiter, (roomy,), 20, 1_000) == 9


def test_the_longest_wait_of_the_empty_quotas_is_named(limiter: Quotas) -> None:
    minute, hour = Quota("minute", 1, 60), Quota("hour", 1, 3600)
    limiter.take(CLIENT, METHOD, (minute, hour), 0)
    with pytest.raises(RateLimited) as info:
        limiter.take(CLIENT, METHOD, (minute, hour), 0)
    assert "retry after 3600 s" in info.value.message


def test_tokens_come_back_evenly_over_the_period(limiter: Quotas) -> None:
    quota = (Quota("p", 2, 60),)  # one token per 30 s
    assert _successes(limiter, quota, 5, 0) == 2
    with pytest.raises(RateLimited) as info:
        limiter.take(CLIENT, METHOD, quota, 20_000)
    assert "retry after 10 s" in info.value.message
    assert _successes(limiter, quota, 5, 30_000) == 1
    # A long pause refills to the limit, never beyond it.
    assert _successes(limiter, quota, 5, 10 * 60_000) == 2


def test_a_clock_reading_older_than_the_bucket_gets_no_refill_and_no_penalty(limiter: Quotas) -> None:
    # Workers read the clock before they queue for the shared file: an older now_ms may arrive.
    quota = (Quota("p", 2, 60),)
    limiter.take(CLIENT, METHOD, quota, 60_000)
    limiter.take(CLIENT, METHOD, quota, 59_000)
    with pytest.raises(RateLimited):
        limiter.take(CLIENT, METHOD, quota, 59_500)
    assert _successes(limiter, quota, 5, 90_000) == 1  # refilled from 60 s, the latest time seen


def test_two_limiters_on_one_file_share_one_budget(shared_files: Callable[[], SharedQuotaLimiter]) -> None:
    first, second = shared_files(), shared_files()
    quota = (Quota("p", 5, 3600),)
    won = 0
    for _ in range(10):
        won += _successes(first, quota, 1, 1_000) + _successes(second, quota, 1, 1_000)
    assert won == 5
    with pytest.raises(RateLimited):
        first.take(CLIENT, METHOD, quota, 1_000)


_WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from crossway.core.errors import RateLimited
    from gateway.provider.quotas import SharedQuotaLimiter
    from policies import Quota

    limiter = SharedQuotaLimiter(Path(sys.argv[1]))
    won = 0
    for _ in range(int(sys.argv[2])):
        try:
            limiter.take("EE/GOV/70000002/tax", "svc/M", (Quota("p", 5, 3600), Quota("q", 50, 3600)), 1_000)
        except RateLimited:
            continue
        won += 1
    limiter.close()
    print(won)
    """
)


def test_worker_processes_on_one_file_share_one_budget(tmp_path: Path) -> None:
    db = tmp_path / "quotas.sqlite"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(db), "40"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    won = []
    for worker in workers:
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err.decode()
        won.append(int(out))
    assert sum(won) == 5
    # All or nothing held across processes too: "q" lost exactly the 5 calls that passed.
    check = sqlite3.connect(db)
    rows = dict(check.execute("SELECT policy_id, tokens FROM buckets").fetchall())
    check.close()
    assert rows == {"p": 0.0, "q": 45.0}


def test_refilled_buckets_are_purged_and_a_purged_bucket_is_full(
    shared_files: Callable[[], SharedQuotaLimiter], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateway.provider.quotas._PURGE_EVERY", 3)
    limiter = shared_files()
    short, long = Quota("short", 1, 1), Quota("long", 1, 3600)
    limiter.take(CLIENT, METHOD, (short,), 0)
    limiter.take("EE/GOV/70000003/other", METHOD, (long,), 0)
    limiter.take(CLIENT, "svc/Other", (short,), 5_000)  # the 3rd call purges: "short" of CLIENT is full again
    db = sqlite3.connect(tmp_path / "quotas.sqlite")
    assert sorted(db.execute("SELECT policy_id, client, method FROM buckets").fetchall()) == [
        ("long", "EE/GOV/70000003/other", METHOD),
        ("short", CLIENT, "svc/Other"),
    ]
    db.close()
    limiter.take(CLIENT, METHOD, (short,), 5_000)
    with pytest.raises(RateLimited):
        limiter.take("EE/GOV/70000003/other", METHOD, (long,), 5_000)


def test_a_file_that_is_not_a_database_stops_the_gateway_at_start(tmp_path: Path) -> None:
    path = tmp_path / "quotas.sqlite"
    path.write_bytes(b"not a database, " * 256)
    with pytest.raises(ConfigError) as info:
        SharedQuotaLimiter(path)
    assert str(path) in info.value.message


def test_a_path_that_cannot_be_a_file_stops_the_gateway_at_start(tmp_path: Path) -> None:
    (tmp_path / "quotas.sqlite").mkdir()
    with pytest.raises(ConfigError):
        SharedQuotaLimiter(tmp_path / "quotas.sqlite")


def test_a_broken_table_refuses_the_call_and_takes_nothing(
    shared_files: Callable[[], SharedQuotaLimiter], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = shared_files()
    quota = (Quota("p", 5, 60),)
    limiter.take(CLIENT, METHOD, quota, 1_000)
    other = sqlite3.connect(tmp_path / "quotas.sqlite")
    other.execute("ALTER TABLE buckets RENAME TO elsewhere")
    other.commit()
    with pytest.raises(PolicyUnavailable) as info:
        limiter.take(CLIENT, METHOD, quota, 1_000)
    assert info.value.code == "policy.unavailable"
    assert "retry" in info.value.hint
    assert "quotas.sqlite" not in info.value.message  # the peer learns nothing of our disk
    assert "refusing" in caplog.text and CLIENT in caplog.text
    other.execute("ALTER TABLE elsewhere RENAME TO buckets")
    other.commit()
    other.close()
    assert _successes(limiter, quota, 10, 1_000) == 4  # one taken before; the refused call took none


def test_a_lock_held_too_long_refuses_the_call(tmp_path: Path) -> None:
    path = tmp_path / "quotas.sqlite"
    limiter = SharedQuotaLimiter(path, busy_timeout_ms=50)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(PolicyUnavailable):
            limiter.take(CLIENT, METHOD, (Quota("p", 5, 60),), 1_000)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    limiter.take(CLIENT, METHOD, (Quota("p", 5, 60),), 1_000)  # usable again once the lock is free
    limiter.close()


def test_a_closed_limiter_refuses_the_call(tmp_path: Path) -> None:
    limiter = SharedQuotaLimiter(tmp_path / "quotas.sqlite")
    limiter.close()
    with pytest.raises(PolicyUnavailable):
        limiter.take(CLIENT, METHOD, (Quota("p", 5, 60),), 1_000)
