"""A demo federation shared by the tests of one module: real NATS, registry, gateways, backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from crossway.demo.federation import Federation


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def federation(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    workdir: Path = tmp_path_factory.mktemp("federation")
    async with Federation(workdir, span_flush_ms=200) as fed:
        yield fed
