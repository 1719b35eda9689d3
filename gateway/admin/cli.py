"""``crossway policy …``: validate, format and test policy files; diff, apply, list and roll back
the versions of a running gateway through its admin API.

The offline commands need the methods the policies are typed against — the same ones the
gateway serves: ``--registry DIR`` (every service the registry knows) or ``--service
ID=DESCRIPTOR_SET`` (repeatable). The online ones need ``--gateway HOST:PORT`` (the admin
port), ``--ca`` (the registry CA the gateway's certificate chains to) and ``--token-file``.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from crossway.core.errors import ConfigError, error_class_for_code
from crossway.core.ids import MethodId, ServiceId
from crossway.core.tomlkeys import check_keys
from gateway.admin.questions import AccessQuestion, describe_decision
from policies import AccessRequest, CedarDecisionPoint, PolicyBundle, format_policy_text
from policies.bundle import POLICY_SUFFIX, read_policy_dir

__all__ = ["add_commands"]


# -- methods the policies are typed against ----------------------------------------------------


def _methods(args: argparse.Namespace, extra: Iterable[MethodId] = ()) -> set[MethodId]:
    from registry.configuration import describe_service  # lazy: keeps `crossway --help` fast

    found: set[MethodId] = set(extra)
    pairs: list[tuple[ServiceId, bytes]] = []
    if args.registry:
        from registry.authority import RegistryAuthority, passphrase_from_env

        authority = RegistryAuthority.open(Path(args.registry), passphrase=passphrase_from_env())
        try:
            pairs += [(s.id, s.file_descriptor_set) for s in authority.store.services()]
        finally:
            authority.close()
    for entry in args.service or ():
        service_text, sep, path = entry.partition("=")
        if not sep:
            raise ConfigError(
                f"--service {entry!r}: expected ID=DESCRIPTOR_SET", hint="e.g. --service EE/.../x.v1.Api=api.fds"
            )
        try:
            pairs.append((ServiceId.parse(service_text), Path(path).read_bytes()))
        except OSError as exc:
            raise ConfigError(f"--service: cannot read {path}: {exc.strerror}") from exc
    for service, fds in pairs:
        try:
            found |= {service.method(name) for name in describe_service(fds, service.grpc_service)}
        except ValueError as exc:
            raise ConfigError(f"service {service}: {exc}", hint="pass the service's FileDescriptorSet") from exc
    if not found:
        raise ConfigError(
            "no methods to type the policies against",
            hint="pass --registry DIR or --service ID=DESCRIPTOR_SET (the services this gateway serves)",
        )
    return found


def _bundle(args: argparse.Namespace, extra: Iterable[MethodId] = ()) -> PolicyBundle:
    return PolicyBundle.from_texts(read_policy_dir(Path(args.dir)), _methods(args, extra), version="files")


# -- offline -----------------------------------------------------------------------------------


def _validate(args: argparse.Namespace) -> int:
    bundle = _bundle(args)
    print(f"ok: {len(bundle.policies)} policies in {args.dir} are valid for {len(bundle.slices)} services")
    return 0


def _fmt(args: argparse.Namespace) -> int:
    changed = []
    for path in sorted(Path(args.dir).glob(f"*{POLICY_SUFFIX}")):
        text = path.read_text(encoding="utf-8")
        formatted = format_policy_text(path.name, text)
        if formatted != text:
            changed.append(path.name)
            if not args.check:
                path.write_text(formatted, encoding="utf-8")
    verb = "would reformat" if args.check else "reformatted"
    for name in changed:
        print(f"{verb} {name}")
    if not changed:
        print("all policy files are formatted")
    return 1 if args.check and changed else 0


def _request(case: dict[str, Any], where: str) -> AccessRequest:
    for key in ("client", "method"):
        if key not in case:
            raise ConfigError(f"{where}: missing {key!r}", hint="a case needs client and method")
    return AccessQuestion(
        client=str(case["client"]),
        method=str(case["method"]),
        purpose=str(case.get("purpose", "")),
        user_id=str(case.get("user_id", "")),
        claims={str(k): v for k, v in case.get("claims", {}).items()},
        groups=case.get("groups", ()),
        time_ms=int(case.get("time_ms", 0)),
    ).request(where)


# What a [[case]] of a policy test file may hold; anything else is a typo, never ignored.
_CASE_KEYS = ("name", "client", "method", "purpose", "user_id", "groups", "claims", "time_ms", "expect", "policies")


def _cases(path: Path) -> list[dict[str, Any]]:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}", hint="cases are [[case]] tables in a TOML file") from exc
    check_keys(doc, ("case",), source=path, where="top")
    cases = doc.get("case", [])
    if not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases):
        raise ConfigError(f"{path}: [top] case: must be an array of tables", hint="write [[case]] entries")
    for n, case in enumerate(cases):
        check_keys(case, _CASE_KEYS, source=path, where=f"case[{n}]")
    return cases


def _test(args: argparse.Namespace) -> int:
    if args.cases:
        cases = _cases(Path(args.cases))
    else:
        if not (args.client and args.method):
            raise ConfigError("name --client and --method, or give --cases FILE")
        claims = dict(c.partition("=")[::2] for c in args.claim or ())
        cases = [
            {
                "client": args.client,
                "method": args.method,
                "purpose": args.purpose,
                "user_id": args.user_id,
                "groups": args.group or [],
                "claims": claims,
            }
        ]
    requests = [_request(c, f"case {n + 1}") for n, c in enumerate(cases)]
    point = CedarDecisionPoint(_bundle(args, (r.method for r in requests)))
    failed = denied = 0
    for n, (case, request) in enumerate(zip(cases, requests, strict=True)):
        decision = point.decide(request)
        denied += not decision.allowed
        line = f"{describe_decision(decision)}   {request.client} -> {request.method}"
        if request.purpose:
            line += f" for {request.purpose!r}"
        expect = str(case.get("expect", "")).lower()
        want_ids = case.get("policies")
        if expect:
            ok = (expect == "allow") == decision.allowed
            if want_ids is not None:
                ok = ok and sorted(want_ids) == sorted(decision.policy_ids)
            failed += not ok
            name = case.get("name", f"case {n + 1}")
            line = f"{'ok  ' if ok else 'FAIL'} {name}: {line}" + (
                "" if ok else f"  (expected {expect.upper()}" + (f" by {', '.join(want_ids)}" if want_ids else "") + ")"
            )
        print(line)
    if args.cases:
        print(f"{len(cases) - failed} passed, {failed} failed")
        return 1 if failed else 0
    return 1 if args.exit_code and denied else 0


# -- online (admin API) ------------------------------------------------------------------------


def _stub(args: argparse.Namespace) -> tuple[Any, list[tuple[str, str]]]:
    import grpc

    from protos.crossway.v1 import admin_pb2_grpc

    try:
        ca = Path(args.ca).read_bytes()
        token = Path(args.token_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    channel = grpc.secure_channel(args.gateway, grpc.ssl_channel_credentials(ca))
    return admin_pb2_grpc.AdminStub(channel), [("authorization", f"Bearer {token}")]  # type: ignore[no-untyped-call]


def _call(method: Any, request: Any, metadata: list[tuple[str, str]]) -> Any:
    import grpc

    try:
        return method(request, metadata=metadata, timeout=30)
    except grpc.RpcError as exc:
        err: Any = exc  # grpc's call errors carry these methods; RpcError's stub does not say so
        trailing = {str(k): str(v) for k, v in (err.trailing_metadata() or ())}
        code = trailing.get("crossway-error", "")
        cls = error_class_for_code(code) if code else ConfigError
        details = str(err.details())
        message = details.split(": ", 2)[-1] if code else f"{err.code().name}: {details}"
        raise cls(message, hint=trailing.get("crossway-hint") or None) from exc


def _files(directory: str) -> list[Any]:
    from protos.crossway.v1 import admin_pb2 as pb

    return [pb.PolicyFile(name=n, text=t) for n, t in sorted(read_policy_dir(Path(directory)).items())]


def _diff(args: argparse.Namespace) -> int:
    from protos.crossway.v1 import admin_pb2 as pb

    stub, md = _stub(args)
    result = _call(stub.DiffPolicies, pb.DiffPoliciesRequest(files=_files(args.dir)), md)
    if not result.changed:
        print(f"no changes against version {result.current}")
        return 0
    sys.stdout.write(result.diff)
    return 0


def _print_version(v: Any, verb: str) -> None:
    print(f"{verb} version {v.number}: {v.summary} (by {v.author}, digest {v.digest[:12]}, diff {v.diff_digest[:12]})")


def _apply(args: argparse.Namespace) -> int:
    from protos.crossway.v1 import admin_pb2 as pb

    stub, md = _stub(args)
    _print_version(
        _call(stub.ApplyPolicies, pb.ApplyPoliciesRequest(files=_files(args.dir), summary=args.summary), md), "applied"
    )
    return 0


def _history(args: argparse.Namespace) -> int:
    import datetime

    from protos.crossway.v1 import admin_pb2 as pb

    stub, md = _stub(args)
    result = _call(stub.ListPolicyVersions, pb.ListPolicyVersionsRequest(), md)
    for v in result.versions:
        when = (
            datetime.datetime.fromtimestamp(v.created_at_ms / 1000, datetime.UTC).isoformat(timespec="seconds")
            if v.created_at_ms
            else "-"
        )
        mark = "*" if v.number == result.current else " "
        print(f"{mark} v{v.number:<4} {when:<25} {v.author or '-':<24} {v.summary}")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from protos.crossway.v1 import admin_pb2 as pb

    stub, md = _stub(args)
    _print_version(
        _call(stub.RollbackPolicies, pb.RollbackPoliciesRequest(number=args.number, summary=args.summary), md),
        "applied",
    )
    return 0


# -- argparse ----------------------------------------------------------------------------------


def _typed(p: argparse.ArgumentParser) -> None:
    p.add_argument("--registry", help="registry directory: type policies against every service it knows")
    p.add_argument("--service", action="append", metavar="ID=FDS", help="a served service and its descriptor set")


def _online(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gateway", required=True, help="the gateway's admin port, HOST:PORT")
    p.add_argument("--ca", required=True, help="PEM of the registry CA (the gateway's certificate chains to it)")
    p.add_argument(
        "--token-file", required=True, help="file holding an admin JWT (role policy-admin, auditor or observer)"
    )


def add_commands(sub: Any) -> None:
    group = sub.add_parser("policy", help="validate, format, test and apply access policies")
    leaves = group.add_subparsers(dest="policy_command", metavar="COMMAND")
    leaves.required = True
    p = leaves.add_parser("validate", help="check policy files against the schema; exit 1 naming file:line")
    p.add_argument("dir")
    _typed(p)
    p.set_defaults(handler=_validate)
    p = leaves.add_parser("fmt", help="rewrite policy files in canonical layout")
    p.add_argument("dir")
    p.add_argument("--check", action="store_true", help="only report; exit 1 when a file would change")
    p.set_defaults(handler=_fmt)
    p = leaves.add_parser("test", help="would CLIENT be allowed to call METHOD? (or run a file of cases)")
    p.add_argument("dir")
    _typed(p)
    p.add_argument("--client", help="calling subsystem, INSTANCE/CLASS/CODE/SUBSYSTEM")
    p.add_argument("--method", help="SERVICE_ID/METHOD")
    p.add_argument("--purpose", default="")
    p.add_argument("--user-id", default="")
    p.add_argument("--claim", action="append", metavar="K=V", help="a verified end-user claim")
    p.add_argument("--group", action="append", help="a registry group of the client")
    p.add_argument("--cases", help="TOML file of [[case]] tables with expect = allow|deny (and policies = [...])")
    p.add_argument("--exit-code", action="store_true", help="exit 1 when a single question is denied")
    p.set_defaults(handler=_test)
    for name, handler, text in (
        ("diff", _diff, "show what applying DIR would change on the gateway"),
        ("apply", _apply, "apply DIR as the gateway's next policy version"),
    ):
        p = leaves.add_parser(name, help=text)
        p.add_argument("dir")
        _online(p)
        if name == "apply":
            p.add_argument("--summary", default="", help="what changed and why (default: line counts)")
        p.set_defaults(handler=handler)
    p = leaves.add_parser("history", help="list the gateway's policy versions (who, when, summary)")
    _online(p)
    p.set_defaults(handler=_history)
    p = leaves.add_parser("rollback", help="apply an earlier version again, as the next version")
    p.add_argument("number", type=int)
    _online(p)
    p.add_argument("--summary", default="")
    p.set_defaults(handler=_rollback)
