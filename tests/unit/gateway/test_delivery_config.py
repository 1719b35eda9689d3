"""The [delivery] table: defaults, every documented key read, bad values named with file and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crossway.core.errors import ConfigError
from gateway.delivery import DeliveryConfig, load_delivery_config

ROOT = Path(__file__).resolve().parents[3]


def test_without_a_delivery_table_the_defaults_apply(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('[gateway]\nid = "EE/GOV/1/gw1"\n')
    assert load_delivery_config(path) == DeliveryConfig()


def test_the_table_documented_in_docs_delivery_md_loads(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "delivery.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(\[delivery\].*?)```", text, re.DOTALL)
    assert block is not None
    path = tmp_path / "gateway.toml"
    path.write_text(block.group(1))
    config = load_delivery_config(path)
    assert config.policy_dir == tmp_path / "policies" / "delivery"
    assert config.retention_days == 30 and config.max_in_flight == 256


@pytest.mark.parametrize(
    ("line", "key"),
    [("backoff_s = -1", "backoff_s"), ("enabled = 1", "enabled"), ("relay_timout_s = 3", "relay_timout_s")],
)
def test_a_bad_value_names_the_file_and_key(tmp_path: Path, line: str, key: str) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(f"[delivery]\n{line}\n")
    with pytest.raises(ConfigError, match=rf"\[delivery\] {key}"):
        load_delivery_config(path)
