"""The SAP CAP server fixture's plumbing: start it, or skip — and fail instead under CI=true."""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any

import pytest

from crossway.demo.sapcap import CapServer, NodeInstallFailed, NodeMissing


async def start_cap_server(**kwargs: Any) -> CapServer:
    server = CapServer(**kwargs)
    try:
        await server.start()
    except (NodeMissing, NodeInstallFailed) as exc:
        await server.aclose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"SAP CAP tests need Node/npm under CI: {exc}")
        pytest.skip(f"SAP CAP tests skipped: {exc.message}")
    except BaseException:
        await server.aclose()
        raise
    return server


def control(server: CapServer, path: str, method: str = "POST") -> dict[str, Any]:
    """The CAP server's /__test API (token rotation, delay, counters)."""
    request = urllib.request.Request(
        f"{server.base_url}/__test/{path}", method=method, data=b"" if method == "POST" else None
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result
