"""Provider-side step 3: the policy decision, deny by default.

Policies are typed against the methods this gateway actually serves, and those come from the
registry's service descriptors — so the bundle is (re)built when a configuration changes the
method set. Until a valid bundle exists every call is refused (``policy.unavailable``): no
policies never means "allow".

The policy *files* are those of the newest applied version (``install``, fed by the admin API's
version store over NATS) or, before any was applied, the configured directory (version 0).
A swap is one reference assignment in the decision point: a call in flight keeps the decision
it already has, the next call uses the new bundle.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from crossway.core.errors import CrosswayError, PolicyUnavailable
from crossway.core.ids import MethodId, ServiceId
from policies import AccessRequest, CedarDecisionPoint, Decision, PolicyBundle
from policies.bundle import read_policy_dir
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
        # The files of the newest applied version and its number; None → the directory.
        self._files: Mapping[str, str] | None = None
        self._version = 0
        # Why no policy may be served (a refused rollback); None while policies may load.
        self._blocked: str | None = None

    @property
    def methods(self) -> frozenset[MethodId]:
        """The methods the current bundle was built for (what a new version is checked against)."""
        return self._methods

    @property
    def version(self) -> int:
        return self._version if self._point is not None else -1

    def current_files(self) -> Mapping[str, str]:
        """The files of the version in force (the directory's until a version is applied)."""
        return self._files if self._files is not None else self.directory_files()

    def directory_files(self) -> dict[str, str]:
        """The policy directory's files (version 0); empty when none is configured."""
        return read_policy_dir(self._dir) if self._dir is not None else {}

    def build(self, files: Mapping[str, str], version: int) -> PolicyBundle:
        """Validate ``files`` for the served methods; raises ``PolicyInvalid`` naming file:line."""
        return PolicyBundle.from_texts(files, self._methods, version=f"v{version}")

    def block(self, reason: str) -> None:
        """Serve no policy at all — every call is denied — until a version is installed again.

        For a refused rollback (gateway.admin.versions): neither an older version nor the
        directory's files may stand in for the newest version applied here before.
        """
        self._blocked = reason
        self._point = None
        log.critical("policies blocked: %s", reason)

    def install(self, bundle: PolicyBundle, files: Mapping[str, str], version: int) -> None:
        """Put a built bundle in force (atomic swap); later method changes rebuild from ``files``."""
        self._blocked = None
        self._files, self._version = files, version
        if self._point is None:
            self._point = CedarDecisionPoint(bundle)
        else:
            self._point.swap(bundle)
        log.info("policy version %d in force", version)

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
        if self._blocked is not None:
            self._methods = methods  # what a version installed later is built for; nothing served now
            return
        if self._dir is None and self._files is None:
            log.warning("no policy directory configured: every call will be denied")
            return
        try:
            files = self._files if self._files is not None else self.directory_files()
            bundle = PolicyBundle.from_texts(files, methods, version=f"v{self._version}")
        except CrosswayError as exc:
            # Keep the last good bundle (or none: fail closed) and say why, loudly.
            log.error("policy version %d rejected, keeping the previous set: %s", self._version, exc)
            return
        self._methods = methods
        if self._point is None:
            self._point = CedarDecisionPoint(bundle)
        else:
            self._point.swap(bundle)
        log.info("policy bundle %s loaded for %d methods", bundle.version, len(methods))

    def decide(self, request: AccessRequest) -> Decision:
        if self._point is None:
            if self._blocked is not None:
                raise PolicyUnavailable("policies are blocked on this gateway: an older policy version was replayed")
            raise PolicyUnavailable("no valid policy set is loaded on this gateway")
        return self._point.decide(request)
