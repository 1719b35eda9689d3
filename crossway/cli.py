"""The ``crossway`` command line: one entry point, one subcommand group per area.

Every handler returns an exit code. A :class:`CrosswayError` escaping a handler is printed as
``error[code]: message`` plus its hint and exits 1 — never a traceback for a user mistake. Two
more expected conditions stay quiet: Ctrl-C (exit 130) and a reader that stopped reading
(``crossway audit query | head``: exit 141, as a process killed by SIGPIPE). Anything else is a
bug: one ``error[internal]`` line names the exception and the file the traceback was written to.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from crossway.core.errors import CrosswayError

__all__ = ["main"]

Handler = Callable[[argparse.Namespace], int]


def _registry_cosigner(args: argparse.Namespace) -> object | None:
    """``registry serve --nats`` cosigns the gateways' audit checkpoints (issue 12), unless told not to."""
    if not args.nats or args.no_cosign:
        return None
    from pathlib import Path

    from audit.index.cosigner import RegistryCosigner
    from crossway.natsclient import access_from_arguments

    access = access_from_arguments(args)
    assert access is not None
    # The registry's identity may cosign (crossway.natsauth): one identity for the one process.
    return RegistryCosigner(access, Path(args.dir))


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crossway",
        description="Crossway: a signed, authorized, audited data exchange between agencies.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    # Each area registers its own commands; imports stay lazy so `crossway --help` is fast.
    from audit.index.cli import add_commands as add_audit
    from console.cli import add_commands as add_console
    from crossway.demo.cli import add_commands as add_demo
    from crossway.natscli import add_commands as add_nats
    from gateway.admin.cli import add_commands as add_policy
    from gateway.cli import add_commands as add_gateway
    from gateway.delivery.cli import add_commands as add_mail
    from gateway.topics.cli import add_commands as add_topic
    from registry.cli import add_commands as add_registry

    add_registry(sub, companions=(_registry_cosigner,))
    add_gateway(sub)
    add_policy(sub)
    add_demo(sub)
    add_audit(sub)
    add_console(sub)
    add_mail(sub)
    add_topic(sub)
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
    except BrokenPipeError:
        _drop_stdout()
        return 141
    except Exception as exc:
        log = _write_traceback(exc, argv)
        print(f"error[internal]: unexpected {type(exc).__name__} in `crossway {args.command}`", file=sys.stderr)
        print(
            f"  hint: this is a bug in Crossway; the details are in {log} (include it when you report it)",
            file=sys.stderr,
        )
        return 1


def _drop_stdout() -> None:
    """Whoever read our output has gone: point stdout at /dev/null so that the interpreter's own
    flush at exit does not fail again (and print 'Exception ignored … BrokenPipeError')."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _write_traceback(exc: BaseException, argv: Sequence[str] | None) -> Path:
    """The traceback of an unexpected error, in a private file of the temporary directory."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    fd, name = tempfile.mkstemp(prefix=f"crossway-internal-{stamp}-", suffix=".log")
    with os.fdopen(fd, "w", encoding="utf-8") as out:  # mkstemp: readable by this user only
        command = sys.argv[1:] if argv is None else list(argv)
        out.write(f"crossway {' '.join(command[:2])} … (arguments not recorded)\n")
        traceback.print_exception(exc, file=out)
    return Path(name)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
