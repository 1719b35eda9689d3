"""Configuration sources: verify every copy, never roll back, serve the last good copy until it expires."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import registry
from crossway.core.clock import ManualClock
from crossway.core.errors import ConfigError, RegistryStale, RegistryUntrusted
from registry import (
    FileConfigurationSource,
    RegistryAuthority,
    StaticConfigurationSource,
    VerifiedConfiguration,
    load_anchor,
)


def test_the_static_source_serves_its_copy_until_it_expires(authority: RegistryAuthority, clock: ManualClock) -> None:
    source = StaticConfigurationSource(
        authority.build_configuration(validity_s=10), load_anchor(authority.anchor_path), clock
    )
    assert source.current().serial == 1
    clock.advance(10_000)
    with pytest.raises(RegistryStale, match="expired"):
        source.current()


def test_the_static_source_accepts_newer_copies_and_tells_subscribers(
    authority: RegistryAuthority, clock: ManualClock
) -> None:
    anchor = load_anchor(authority.anchor_path)
    old = authority.build_configuration()
    source = StaticConfigurationSource(old, anchor, clock)
    seen: list[VerifiedConfiguration] = []
    unsubscribe = source.subscribe(seen.append)
    source.replace(authority.build_configuration())
    assert [c.serial for c in seen] == [2] and source.current().serial == 2
    with pytest.raises(RegistryUntrusted, match="not newer"):
        source.replace(old)
    unsubscribe()
    source.replace(authority.build_configuration())
    assert len(seen) == 1


def test_the_static_source_refuses_an_untrusted_copy_at_construction(
    authority: RegistryAuthority, clock: ManualClock
) -> None:
    with pytest.raises(RegistryUntrusted):
        StaticConfigurationSource(b"nonsense", load_anchor(authority.anchor_path), clock)


async def test_the_file_source_picks_up_a_rewritten_file_and_ignores_a_bad_one(
    authority: RegistryAuthority, clock: ManualClock, tmp_path: Path
) -> None:
    path = tmp_path / "configuration.bin"
    source = FileConfigurationSource(path, load_anchor(authority.anchor_path), clock, poll_s=0.01)
    accepted: asyncio.Queue[int] = asyncio.Queue()
    source.subscribe(lambda config: accepted.put_nowait(config.serial))
    await source.start()
    try:
        with pytest.raises(RegistryStale, match="no registry configuration"):
            source.current()
        path.write_bytes(authority.build_configuration())
        assert await asyncio.wait_for(accepted.get(), 2) == 1
        path.write_bytes(b"corrupted")
        await asyncio.sleep(0.05)
        assert accepted.empty() and source.current().serial == 1  # the last good copy stays
        path.write_bytes(authority.build_configuration())
        assert await asyncio.wait_for(accepted.get(), 2) == 2
    finally:
        await source.aclose()


def test_the_public_api_lists_only_names_that_exist() -> None:
    for name in registry.__all__:
        assert hasattr(registry, name), name
    assert sorted(registry.__all__) == sorted(set(registry.__all__))


def test_a_configuration_older_than_the_one_applied_before_a_restart_is_refused(
    authority: RegistryAuthority, clock: ManualClock, tmp_path: Path
) -> None:
    anchor, mark = load_anchor(authority.anchor_path), tmp_path / "data" / "registry-serial.mark"
    old, newer = authority.build_configuration(), authority.build_configuration()
    StaticConfigurationSource(newer, anchor, clock, mark=mark)  # serial 2 applied; the mark is on disk
    assert mark.read_text().strip() == "2"
    # A restart (a new source, nothing in memory) fed the older copy: refused, the mark stays.
    with pytest.raises(RegistryUntrusted, match="older than serial 2 applied here before"):
        StaticConfigurationSource(old, anchor, clock, mark=mark)
    assert StaticConfigurationSource(newer, anchor, clock, mark=mark).current().serial == 2
    assert mark.read_text().strip() == "2"


def test_a_damaged_high_water_mark_fails_closed(
    authority: RegistryAuthority, clock: ManualClock, tmp_path: Path
) -> None:
    mark = tmp_path / "registry-serial.mark"
    mark.write_text("not a number")
    with pytest.raises(ConfigError, match="high-water mark"):
        StaticConfigurationSource(authority.build_configuration(), load_anchor(authority.anchor_path), clock, mark=mark)
