"""The embedded nats-server: starts on a random port, keeps streams across restarts, stops cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import nats
import pytest

from crossway.core.errors import ConfigError
from crossway.natsbox import EmbeddedNats, find_nats_server


def test_the_binary_is_found_next_to_the_virtualenv_python() -> None:
    assert find_nats_server().name == "nats-server"


async def test_a_server_on_port_zero_gets_a_real_port_and_accepts_clients(nats_server: EmbeddedNats) -> None:
    assert nats_server.port not in (0, 4222)
    assert nats_server.url == f"nats://127.0.0.1:{nats_server.port}"
    nc = await nats.connect(nats_server.url, connect_timeout=2, allow_reconnect=False)
    try:
        info = await nc.jetstream().account_info()
        assert info.streams == 0
    finally:
        await nc.close()


async def test_a_restart_keeps_the_port_and_the_streams(nats_server: EmbeddedNats) -> None:
    port = nats_server.port
    nc = await nats.connect(nats_server.url, connect_timeout=2, allow_reconnect=False)
    js = nc.jetstream()
    await js.add_stream(name="KEEP", subjects=["keep.>"])
    await js.publish("keep.one", b"1", timeout=2)
    await nc.close()

    await nats_server.stop()
    assert not nats_server.running
    await nats_server.start()
    assert nats_server.port == port

    nc = await nats.connect(nats_server.url, connect_timeout=2, allow_reconnect=False)
    try:
        info = await nc.jetstream().stream_info("KEEP")
        assert info.state.messages == 1
    finally:
        await nc.close()


async def test_stopping_leaves_no_process_behind(tmp_path: Path) -> None:
    async with EmbeddedNats(tmp_path) as server:
        assert server._proc is not None
        pid = server._proc.pid
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_a_server_that_cannot_start_fails_with_the_tail_of_its_log(tmp_path: Path) -> None:
    async with EmbeddedNats(tmp_path / "first") as first:
        # The same port twice: the second server cannot listen and exits.
        second = EmbeddedNats(tmp_path / "second", port=first.port, start_timeout=5)
        with pytest.raises(ConfigError) as caught:
            await second.start()
    assert "nats-server" in caught.value.message
    assert "address already in use" in caught.value.message.lower()
    assert not second.running


async def test_a_server_killed_from_outside_can_be_started_again(nats_server: EmbeddedNats) -> None:
    assert nats_server._proc is not None
    os.kill(nats_server._proc.pid, signal.SIGKILL)
    await asyncio.sleep(0.2)
    assert not nats_server.running
    await nats_server.start()
    assert nats_server.running
