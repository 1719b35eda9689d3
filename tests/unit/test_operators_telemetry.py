"""Which signals go to OTLP, JSON log lines with the exchange's ids, and [metrics]/[logging] (issue 17)."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from pathlib import Path

import pytest

from crossway.core.errors import ConfigError
from crossway.logs import JsonFormatter, bind_exchange, bound_ids
from crossway.metrics import MetricsServer
from crossway.telemetry import otlp_signals
from gateway.shared.config import load_config
from tests.unit.gateway.test_config import VALID, write


def test_nothing_is_exported_over_otlp_unless_the_environment_asks() -> None:
    assert otlp_signals({}) == frozenset()
    assert otlp_signals({"OTEL_TRACES_EXPORTER": "otlp"}) == {"traces"}
    assert otlp_signals({"OTEL_TRACES_EXPORTER": "console,otlp", "OTEL_METRICS_EXPORTER": "otlp"}) == {
        "traces",
        "metrics",
    }
    # An endpoint alone turns on the signals whose exporter variable is unset, not the others.
    assert otlp_signals({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_METRICS_EXPORTER": "none"}) == {"traces"}
    assert otlp_signals({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://c:4317"}) == {"metrics"}
    assert otlp_signals({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}) == frozenset()


def test_otlp_over_http_is_refused_with_a_hint() -> None:
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        otlp_signals({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})


def _line(formatter: logging.Formatter, message: str, *args: object) -> dict[str, object]:
    record = logging.LogRecord("gateway.test", logging.WARNING, __file__, 1, message, args, None)
    return dict(json.loads(formatter.format(record)))


def test_a_json_log_line_carries_the_ids_bound_to_its_task_and_no_others() -> None:
    formatter = JsonFormatter({"gateway": "EE/GOV/70000001/gw1", "worker": 1})

    async def one_exchange(message_id: str) -> dict[str, object]:
        bind_exchange(message_id=message_id, trace_id="ab" * 16)
        await asyncio.sleep(0)
        return _line(formatter, "refused %s", message_id)

    async def both() -> list[dict[str, object]]:
        return list(await asyncio.gather(one_exchange("m1"), one_exchange("m2")))

    before = bound_ids()
    first, second = asyncio.run(both())
    assert (first["message_id"], second["message_id"]) == ("m1", "m2")
    assert first["trace_id"] == "ab" * 16 and first["message"] == "refused m1"
    assert first["gateway"] == "EE/GOV/70000001/gw1" and first["worker"] == 1 and first["level"] == "WARNING"
    assert bound_ids() == before  # the tasks' ids stayed in the tasks
    outside = contextvars.Context().run(_line, formatter, "outside any exchange")
    assert "message_id" not in outside and "trace_id" not in outside


def test_the_metrics_and_logging_tables_are_read_and_checked(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, VALID + '\n[metrics]\nlisten = "127.0.0.1:9464"\n[logging]\nformat = "json"\n')
    )
    assert (config.metrics_listen, config.log_format) == ("127.0.0.1:9464", "json")
    assert (load_config(write(tmp_path, VALID)).metrics_listen, load_config(write(tmp_path, VALID)).log_format) == (
        "",
        "text",
    )
    with pytest.raises(ConfigError, match=r"\[logging\] format"):
        load_config(write(tmp_path, VALID + '\n[logging]\nformat = "yaml"\n'))
    with pytest.raises(ConfigError, match=r"\[metrics\] listen"):
        load_config(write(tmp_path, VALID + '\n[metrics]\nlisten = "9464"\n'))
    with pytest.raises(ConfigError, match="did you mean `listen`"):
        load_config(write(tmp_path, VALID + '\n[metrics]\nlisen = "127.0.0.1:9464"\n'))


def test_a_metrics_listener_needs_host_and_port() -> None:
    with pytest.raises(ConfigError, match="HOST:PORT"):
        MetricsServer("localhost")


def test_caller_and_admin_tokens_can_take_a_jwks_instead_of_pem_files(tmp_path: Path) -> None:
    jwks = 'jwks_url = "https://idp.example/jwks.json"\njwks_ca = "idp-ca.pem"\njwks_refresh_s = 60'
    text = VALID.replace('public_keys = ["idp.pem"]', jwks) + f'\n[admin]\nissuer = "a"\naudience = "b"\n{jwks}\n'
    config = load_config(write(tmp_path, text))
    assert config.jwt is not None and config.jwt.public_keys == () and config.jwt.jwks is not None
    assert config.jwt.jwks.url == "https://idp.example/jwks.json" and config.jwt.jwks.refresh_s == 60
    assert config.jwt.jwks.ca == (tmp_path / "etc" / "idp-ca.pem").resolve()
    assert config.admin is not None and config.admin.jwks == config.jwt.jwks
    with pytest.raises(ConfigError, match="at least one PEM file"):
        load_config(write(tmp_path, VALID.replace('public_keys = ["idp.pem"]', "")))
    with pytest.raises(ConfigError, match="jwks_url"):
        load_config(write(tmp_path, VALID.replace('public_keys = ["idp.pem"]', 'jwks_url = "ftp://idp/jwks"')))
