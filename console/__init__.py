"""The web console (issue 16): auditors, policy admins and operators, in a browser.

A separate process, never on the data path: server-rendered pages (Starlette, Jinja2, htmx)
that talk to the gateways' admin ports and the audit index's API **with the signed-in user's own
token**, so every role check stays in the API that owns it. The console itself signs users in
with the agency's identity provider (OIDC, authorization code with PKCE), keeps tokens
server-side, guards every change with a CSRF token and serves every page under a strict CSP.

Public API: ``create_app`` (the ASGI app), ``load_config`` / ``ConsoleConfig``, and
``add_commands`` (``crossway console``). ``create_app`` is imported on first use: the ``crossway``
command registers ``console`` without the optional extra (``crossway[console]``) installed.
"""

from typing import Any

from console.cli import add_commands
from console.config import ConsoleConfig, load_config

__all__ = ["ConsoleConfig", "add_commands", "create_app", "load_config"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from console.app import create_app

        return create_app
    raise AttributeError(f"module 'console' has no attribute {name!r}")
