"""The same index queries on SQLite and on a real PostgreSQL server give the same answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from audit.index import Filters, IndexStore, open_store
from audit.trail.samples import sample_record
from tests.integration.postgres import postgres_database

GW_A, GW_B = "EE/GOV/70000001/gw1", "EE/GOV/70000002/gw1"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IndexStore]:
    if request.param == "sqlite":
        s = open_store(str(tmp_path / "index.sqlite"))
        yield s
        s.close()
        return
    with postgres_database() as url:
        s = open_store(url)
        yield s
        s.close()


def _items(n: int) -> list[tuple[int, str, bytes]]:
    items = []
    for i in range(n):
        gateway = GW_A if i % 2 == 0 else GW_B
        record = sample_record(
            i,
            gateway=gateway,
            side="client" if gateway == GW_A else "provider",
            client="EE/GOV/70000001/tax" if i % 3 else "EE/GOV/70000001/marketing",
            decision="deny" if i % 3 == 0 else "allow",
            status="PERMISSION_DENIED" if i % 3 == 0 else "OK",
            user_id=f"user-{i % 5}",
            message_id=f"msg-{i // 2:05d}",
        )
        items.append((i + 1, gateway, record.to_json()))
    return items


def test_ingestion_is_idempotent_and_numbers_leaves_per_gateway(store: IndexStore) -> None:
    items = _items(60)
    next_leaf = store.next_leaf()
    assert store.ingest("records", items[:40], next_leaf) == 40
    # A redelivered batch overlapping what was applied: only the new part is written.
    assert store.ingest("records", items[30:], next_leaf) == 20
    assert store.ingest("records", items, next_leaf) == 0
    assert store.count() == 60 and store.count(GW_A) == 30
    assert [r.leaf_index for r in store.leaves(GW_B)] == list(range(30))


def test_filters_select_the_same_records_in_the_same_order(store: IndexStore) -> None:
    store.ingest("records", _items(90), store.next_leaf())
    cases = {
        Filters(client="EE/GOV/70000001/tax"): 60,
        Filters(decision="deny"): 30,
        Filters(status="OK", user_id="user-1"): 12,
        Filters(message_id="msg-00007"): 2,
        Filters(member="EE/GOV/70000001"): 90,
        Filters(gateways=(GW_A,)): 45,
    }
    for filters, expected in cases.items():
        assert store.count_matching(filters) == expected, filters
    first = store.query(Filters(), limit=1)[0].record()
    window = Filters(client="EE/GOV/70000001/tax", since_ms=first.request_in_ms + 10, until_ms=first.request_in_ms + 40)
    rows = store.query(window)
    times = [r.record().request_in_ms for r in rows]
    assert times == sorted(times) and len(rows) == 20


def test_checkpoints_are_stored_once_and_the_latest_is_found(store: IndexStore) -> None:
    assert store.latest_checkpoints() == {}
