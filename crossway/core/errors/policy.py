"""The provider's access decision: policies, quotas and the end user's token."""

from __future__ import annotations

import grpc

from crossway.core.errors.base import CrosswayError

__all__ = ["PolicyDenied", "PolicyError", "PolicyUnavailable", "RateLimited", "UserTokenInvalid"]


class PolicyError(CrosswayError):
    code = "policy.denied"
    grpc_status = grpc.StatusCode.PERMISSION_DENIED


class PolicyDenied(PolicyError):
    code = "policy.denied"
    default_hint = "ask the service owner for a policy that permits this client and method"


class PolicyUnavailable(PolicyError):
    code = "policy.unavailable"
    grpc_status = grpc.StatusCode.UNAVAILABLE
    default_hint = "the gateway has no valid policy set loaded; check its policy directory"


class RateLimited(PolicyError):
    code = "policy.rate_limited"
    grpc_status = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_hint = "slow down: retry after the time named in the message"


class UserTokenInvalid(PolicyError):
    code = "policy.user_token_invalid"
    grpc_status = grpc.StatusCode.UNAUTHENTICATED
    default_hint = (
        "send a fresh end-user token signed with a user-token key your agency registered "
        "(crossway registry member user-token-key), or send none"
    )
