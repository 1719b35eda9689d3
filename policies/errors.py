"""Errors of the policy package, as leaves of Crossway's one error tree.

    ConfigError
    └── PolicyInvalid    policy.invalid    FAILED_PRECONDITION

A bad policy file is a configuration error: it fails the load (or the CLI's
``validate``) with the file and line named, and the gateway keeps the bundle
it already had.
"""

from __future__ import annotations

from crossway.core.errors import ConfigError

__all__ = ["PolicyInvalid"]


class PolicyInvalid(ConfigError):
    code = "policy.invalid"
    default_hint = "fix the named policy file and line, then validate again"
