"""Keyset pages of the index (``IndexStore.query(after=…)``) and the API's page tokens."""

from __future__ import annotations

import pytest

from audit.index.paging import decode_page_token, encode_page_token
from audit.index.store import Filters, IndexStore, open_store
from audit.trail import AuditBadRequest
from audit.trail.samples import sample_record


def _store(n: int) -> IndexStore:
    store = open_store(":memory:")
    items = []
    for i in range(n):
        # Two gateways, and pairs of records with the same request time: the order must still be total.
        gateway = "EE/GOV/70000001/gw1" if i % 2 else "EE/GOV/70000002/gw1"
        record = sample_record(i // 2, gateway=gateway, client="EE/GOV/70000001/tax" if i % 3 else "EE/GOV/70000003/x")
        items.append((i + 1, gateway, record.to_json()))
    store.ingest("records", items, {})
    return store


def test_keyset_pages_cover_the_whole_result_once_in_query_order() -> None:
    store = _store(101)
    for filters in (Filters(), Filters(client="EE/GOV/70000001/tax")):
        whole = store.query(filters)
        pages, after = [], None
        while True:
            page = store.query(filters, limit=7, after=after)
            pages += page
            if len(page) < 7:
                break
            after = page[-1].position
        assert [r.body for r in pages] == [r.body for r in whole]
        assert [r.position for r in pages] == sorted(r.position for r in pages)


def test_a_page_token_round_trips_and_is_bound_to_its_filters_and_scope() -> None:
    filters = Filters(client="EE/GOV/70000001/tax", member="EE/GOV/70000001")
    token = encode_page_token((1_700_000_000_123, "EE/GOV/70000001/gw1", 41), filters)
    assert decode_page_token(token, filters) == (1_700_000_000_123, "EE/GOV/70000001/gw1", 41)
    assert "=" not in token and "/" not in token and "+" not in token  # safe in a URL as it is
    with pytest.raises(AuditBadRequest, match="other filters"):
        decode_page_token(token, Filters(client="EE/GOV/70000001/tax"))
    for garbled in ("", "!!!", token[:-3], "eyJ2IjoxfQ"):
        with pytest.raises(AuditBadRequest):
            decode_page_token(garbled, filters)
