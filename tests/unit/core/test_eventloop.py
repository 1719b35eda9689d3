"""``crossway.eventloop``: the loop a process runs on is the one its configuration names."""

from __future__ import annotations

import asyncio

import pytest

from crossway import eventloop


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_uvloop_runs_the_coroutine_on_a_libuv_loop() -> None:
    assert eventloop.run(_loop_module(), "uvloop").startswith("uvloop")


def test_asyncio_runs_the_coroutine_on_the_standard_loop() -> None:
    assert eventloop.run(_loop_module(), "asyncio").startswith("asyncio")


def test_an_unknown_loop_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValueError, match="uvloop, asyncio"):
        eventloop.run(_loop_module(), "tokio")
