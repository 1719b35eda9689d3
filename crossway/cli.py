"""The ``crossway`` command line: one entry point, one subcommand group per area.

Every handler returns an exit code. A :class:`CrosswayError` escaping a handler is printed as
``error[code]: message`` plus its hint and exits 1 — never a traceback for a user mistake.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from crossway.core.errors import CrosswayError

__all__ = ["main"]

Handler = Callable[[argparse.Namespace], int]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crossway",
        description="Crossway: a signed, authorized, audited data exchange between agencies.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    # Each area registers its own commands; imports stay lazy so `crossway --help` is fast.
    from audit.index.cli import add_commands as add_audit
    from crossway.demo.cli import add_commands as add_demo
    from crossway.natscli import add_commands as add_nats
    from gateway.admin.cli import add_commands as add_policy
    from gateway.cli import add_commands as add_gateway
    from registry.cli import add_commands as add_registry

    add_registry(sub)
    add_gateway(sub)
    add_policy(sub)
    add_demo(sub)
    add_audit(sub)
    add_nats(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except CrosswayError as exc:
        print(f"error[{exc.code}]: {exc.message}", file=sys.stderr)
        print(f"  hint: {exc.hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
