"""Paging through 10,000 exchanges in the console: every record once, in order, to the last page.

The same set-up as ``python -m bench.console`` (which states each page's serve time; nothing
here asserts a time): an index of 10,000 made-up exchanges (20,000 records), ``crossway audit
serve`` over it, ``crossway console`` in front, signed into through the demo provider.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from bench.console import ConsoleOverIndex, seed_index, sign_in, walk
from tests.integration.browser import Browser, require_browser, screenshots_dir, start_driver

pytestmark = pytest.mark.asyncio(loop_scope="module")

EXCHANGES = 10_000


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def servers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ConsoleOverIndex]:
    work = tmp_path_factory.mktemp("console-paging")
    assert seed_index(work / "index.sqlite", EXCHANGES) == 2 * EXCHANGES
    running = ConsoleOverIndex(work / "servers", work / "index.sqlite")
    await running.start()
    try:
        yield running
    finally:
        await running.aclose()


def _walk_everything(url: str) -> tuple[int, list[str]]:
    with httpx.Client(base_url=url, timeout=30) as client:
        sign_in(client)
        times, ids = walk(client, 200)
        return len(times), ids


async def test_following_next_page_from_the_first_page_reaches_every_record_once_in_order(
    servers: ConsoleOverIndex,
) -> None:
    pages, ids = await asyncio.to_thread(_walk_everything, servers.url)
    assert pages == 2 * EXCHANGES // 200
    # Both sides of exchange n are adjacent (same time, gateways in order), exchanges in time order.
    assert ids == [f"msg-{n:08d}" for n in range(EXCHANGES) for _ in range(2)]


def _filtered(url: str) -> list[str]:
    with httpx.Client(base_url=url, timeout=30) as client:
        sign_in(client)
        _, ids = walk(client, 100, "&client=EE%2FGOV%2F70000002%2Fapp&decision=")
        return ids


async def test_a_filtered_search_pages_through_exactly_its_matches(servers: ConsoleOverIndex) -> None:
    ids = await asyncio.to_thread(_filtered, servers.url)
    assert ids == [f"msg-{n:08d}" for n in range(1, EXCHANGES, 3) for _ in range(2)]


def _in_the_browser(b: Browser) -> None:
    b.sign_in("auditor")
    b.get("/audit?size=200")
    b.htmx_ready()
    for page in range(2, 5):
        b.click("#next-page")  # htmx swaps the next page in and pushes its URL
        b.until_text("#result-range", f"Records {(page - 1) * 200 + 1}\u2013{page * 200}")
    assert re.search(r"page_token=[A-Za-z0-9_-]+", b.driver.current_url)
    b.shot("50-audit-page-4-of-100")
    b.click("#first-page")
    b.until_text("#result-range", "Records 1\u2013200")
    assert [e for e in b.driver.get_log("browser") if e["level"] == "SEVERE"] == []


async def test_the_browser_pages_forward_and_back_to_the_first_page(
    servers: ConsoleOverIndex, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    require_browser()
    driver = start_driver(tmp_path)
    try:
        browser = Browser(driver, servers.url, screenshots_dir(tmp_path_factory), tmp_path)
        await asyncio.to_thread(_in_the_browser, browser)
    finally:
        driver.quit()
