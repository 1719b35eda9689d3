"""Provider-side step 3: the policy decision, deny by default.

Policies are typed against the methods this gateway actually serves, and those come from the
registry's service descriptors — so the bundle is (re)built when a configuration changes the
method set. Until a valid bundle exists every call is refused (``policy.unavailable``): no
policies never means "allow".
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from crossway.core.errors import CrosswayError, PolicyUnavailable
from crossway.core.ids import MethodId, ServiceId
from policies import AccessRequest, CedarDecisionPoint, Decision, load_policy_dir
from registry.configuration import VerifiedConfiguration

__all__ = ["PolicyManager"]

log = logging.getLogger(__name__)


class PolicyManager:
    def __init__(self, policy_dir: Path | None, services: Iterable[ServiceId]) -> None:
        self._dir = policy_dir
        self._services = tuple(services)
        self._methods: frozenset[MethodId] = frozenset()
        self._point: CedarDecisionPoint | None = None
        self._serial = -1

    def refresh(self, config: VerifiedConfiguration) -> None:
        """Rebuild the bundle when the configuration changed the set of served methods."""
        if config.serial == self._serial:
            return
        self._serial = config.serial
        methods = frozenset(
            service.method(name)
            for service in self._services
            if (view := config.service(service)) is not None
            for name in view.methods
        )
        if methods == self._methods and self._point is not None:
            return
        if self._dir is None:
            log.warning("no policy directory configured: every call will be denied")
            return
        try:
            bundle = load_policy_dir(self._dir, methods)
        except CrosswayError as exc:
            # Keep the last good bundle (or none: fail closed) and say why, loudly.
            log.error("policies in %s rejected, keeping the previous set: %s", self._dir, exc)
            return
        self._methods = methods
        if self._point is None:
            self._point = CedarDecisionPoint(bundle)
        else:
            self._point.swap(bundle)
        log.info("policy bundle %s loaded for %d methods", bundle.version, len(methods))

    def decide(self, request: AccessRequest) -> Decision:
        if self._point is None:
            raise PolicyUnavailable("no valid policy set is loaded on this gateway")
        return self._point.decide(request)
