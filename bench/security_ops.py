"""Per-operation cost of the message-security primitives: ``python -m bench.security_ops``.

Prints microseconds per operation (best of a few rounds, so a noisy neighbour inflates less).
Compare ratios within one run; the machines are shared (see the performance baseline note).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from crossway.security.encryption import ClientSession, ProviderSession
from crossway.security.replay import MemoryReplayGuard
from crossway.security.signing import PrivateSigningKey, Signer, sha256, verify_signature
from crossway.security.tokens import JwtVerifier, mint_token

__all__ = ["main"]


def _per_op_us(fn: Callable[[], object], n: int, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - start)
    return best / n * 1e6


def main() -> None:
    header = os.urandom(300)  # a typical serialized Header
    body = os.urandom(1024)  # the baseline's 1 KiB payload
    aad = b"01J0000000000000000000000000/0"
    rows: list[tuple[str, float]] = []

    keys: list[tuple[str, PrivateSigningKey]] = [
        ("ES256", ec.generate_private_key(ec.SECP256R1())),
        ("EdDSA", ed25519.Ed25519PrivateKey.generate()),
    ]
    for name, key in keys:
        signer = Signer(key, "00" * 32)
        signature = signer.sign(header)
        public = signer.public_key()
        rows.append((f"{name} sign 300 B header", _per_op_us(functools.partial(signer.sign, header), 2000)))
        check = functools.partial(verify_signature, public, name, header, signature)
        rows.append((f"{name} verify 300 B header", _per_op_us(check, 2000)))

    provider_key = X25519PrivateKey.generate()
    provider_raw = provider_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    client = ClientSession.start(provider_raw)
    provider = ProviderSession.accept(provider_key, client.ephemeral_public, client.recipient_key_id)
    nonce, sealed = client.seal_request(body, aad)
    rows.append(
        ("session start (client: keygen + ECDH + 2x HKDF)", _per_op_us(lambda: ClientSession.start(provider_raw), 1000))
    )
    rows.append(
        (
            "session accept (provider: ECDH + 2x HKDF)",
            _per_op_us(
                lambda: ProviderSession.accept(provider_key, client.ephemeral_public, client.recipient_key_id), 1000
            ),
        )
    )
    rows.append(("seal 1 KiB frame", _per_op_us(lambda: client.seal_request(body, aad), 5000)))
    rows.append(("open 1 KiB frame", _per_op_us(lambda: provider.open_request(nonce, sealed, aad), 5000)))
    rows.append(("sha256 1 KiB", _per_op_us(lambda: sha256(body), 20000)))

    guard = MemoryReplayGuard()
    counter = iter(range(10**9))
    rows.append(("replay guard new id", _per_op_us(lambda: guard.seen_before(str(next(counter)), 2**62, 0), 20000)))

    jwt_key = ec.generate_private_key(ec.SECP256R1())
    verifier = JwtVerifier(issuer="https://idp.example", audience="crossway", public_keys=[jwt_key.public_key()])
    token = mint_token(jwt_key, subject="EE/GOV/70000001/tax", issuer="https://idp.example", audience="crossway")
    rows.append(
        ("JWT ES256 mint", _per_op_us(lambda: mint_token(jwt_key, subject="s", issuer="i", audience="a"), 1000))
    )
    rows.append(("JWT ES256 verify", _per_op_us(lambda: verifier.verify(token), 1000)))

    width = max(len(name) for name, _ in rows)
    for name, us in rows:
        print(f"{name:<{width}}  {us:8.1f} µs")


if __name__ == "__main__":
    main()
