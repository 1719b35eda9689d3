"""`crossway audit witness-key` and `crossway audit witness`: a member's witness of the gateways' audit logs (issue 12)."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from crossway.core.errors import ConfigError
from registry import load_anchor


def _witness_key(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from audit.trail import Witness
    from crossway.security.keys import save_private_key

    path = Path(args.output)
    if path.exists():
        raise ConfigError(f"{path} exists; a witness key is never overwritten", hint="choose another path")
    key = ed25519.Ed25519PrivateKey.generate()
    save_private_key(path, key)
    witness = Witness(args.name, key.public_key())
    print(f"witness key written to {path}; its verifier key, for `crossway registry witness add`:")
    print(witness.vkey)
    return 0


def _witness(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from audit.index.cosigner import WitnessService
    from crossway.natsclient import access_from_arguments
    from crossway.security.keys import load_private_key

    key = load_private_key(Path(args.key))
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ConfigError(f"{args.key} is not an Ed25519 key", hint="make one with `crossway audit witness-key`")
    state = Path(args.state) if args.state else Path(args.key).with_suffix(".state.json")
    nats = access_from_arguments(args)
    assert nats is not None  # --nats is required
    service = WitnessService(
        nats,
        load_anchor(Path(args.anchor)),
        key=key,
        name=args.name,
        state_path=state,
        skip_gateways=frozenset(args.skip_gateway),
    )

    async def run() -> None:
        await service.start()
        print(f"witness {args.name} cosigning audit checkpoints", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await service.aclose()

    asyncio.run(run())
    return 0
