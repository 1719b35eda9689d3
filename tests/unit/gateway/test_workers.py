"""``[gateway] workers``: what a primary tells its worker processes."""

from __future__ import annotations

import pytest

from crossway.core.errors import ConfigError
from gateway.workers import WorkerRole


def test_a_worker_role_round_trips_through_its_command_line_form() -> None:
    role = WorkerRole(2, 8443, 8444, 9443, 0)
    assert WorkerRole.parse(role.format()) == role


def test_a_malformed_worker_role_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        WorkerRole.parse("1:2:three")
