"""Issue 11, item 8: gateways of one member on separate hosts (separate processes, data directories
and NATS identities) share the replay window through NATS KV."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import pytest_asyncio

from crossway.demo.federation import Federation
from tests.integration.peer_client import PeerClient
from tests.integration.test_exchange_security import _request, _send

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    async with Federation(tmp_path_factory.mktemp("replay"), shared_replay=True) as federation:
        yield federation


async def test_a_message_replayed_to_the_members_other_gateway_is_refused(fed: Federation) -> None:
    second = await fed.add_population_gateway("gw2")
    first = PeerClient.from_gateway_keys(
        fed.tax.directory / "keys", f"127.0.0.1:{fed.population.peer_port}", fed.ca_pem, str(fed.tax.member)
    )
    other = replace(first, address=f"127.0.0.1:{second.peer_port}")
    # Captured on its way to gw1, replayed to gw2 — and the other way round.
    for sender, replayer in ((first, other), (other, first)):
        envelope = sender.seal(*_request(fed, sender))
        assert await _send(sender, envelope) == "ok"
        assert await _send(replayer, envelope) == "message.replayed"
        assert await _send(sender, envelope) == "message.replayed"


async def test_each_gateway_still_accepts_fresh_messages(fed: Federation) -> None:
    for agency in (fed.population, *fed.extra_gateways):
        peer = PeerClient.from_gateway_keys(
            fed.tax.directory / "keys", f"127.0.0.1:{agency.peer_port}", fed.ca_pem, str(fed.tax.member)
        )
        assert await _send(peer, peer.seal(*_request(fed, peer))) == "ok"
