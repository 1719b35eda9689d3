"""RFC 3161 timestamps of checkpoints: asking a time-stamping authority (TSA), and checking its tokens.

The cosigner — not the gateway — stamps: it already runs off the exchange path, holds a
checkpoint only after checking it, and can simply publish the checkpoint unstamped when the TSA
is down, so a TSA outage never touches exchanges or records (issue 4, "Tamper evidence").

What is stamped is the SHA-256 of the checkpoint's signed text (``Checkpoint.body()``), so a
token proves that statement — "this log had this size and root" — existed no later than the
TSA's time. ``verify_timestamp`` checks a token in numbered steps, each raising
``TimestampInvalid``:
1. the token is a DER TimeStampResp that parses, in exactly the bytes it re-encodes to, and was
   granted (RFC 3161 §2.4.2);
2. its CMS signature verifies, the signer certificate chains to one of the trusted TSA CAs (at the
   token's own time) and carries the critical id-kp-timeStamping usage (§2.3); the CMS fields no
   signature covers are pinned (versions, and a signature algorithm that matches the digest), so
   no byte of a stored token is free;
3. its message imprint is SHA-256 and equals the hash of the checkpoint's signed bytes (§2.4.2);
then the TSA's time (``genTime``) is reported.
"""

from __future__ import annotations

import hashlib
import logging
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
from cryptography import x509
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)
from rfc3161_client.tsp import TimeStampResponse

from audit.trail import TimestampInvalid, TimestampUnavailable
from crossway.core.errors import ConfigError
from crossway.core.tomlkeys import check_keys

__all__ = [
    "TimestampAuthority",
    "TimestampCheck",
    "Timestamper",
    "load_timestamp_authority",
    "load_tsa_roots",
    "verify_timestamp",
]

log = logging.getLogger(__name__)

_SHA256_OID = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.1")

# SignerInfo digestAlgorithm → the signatureAlgorithm values that go with it (RFC 5754 §3, RFC
# 8419 §2.3 for Ed25519). OpenSSL reads the algorithm from the key and ignores this unsigned
# field, so without the pin a flipped byte in it would go unnoticed.
_SIGNATURE_ALGORITHMS = {
    "2.16.840.1.101.3.4.2.1": {"1.2.840.10045.4.3.2", "1.2.840.113549.1.1.11", "1.2.840.113549.1.1.1"},
    "2.16.840.1.101.3.4.2.2": {"1.2.840.10045.4.3.3", "1.2.840.113549.1.1.12", "1.2.840.113549.1.1.1"},
    "2.16.840.1.101.3.4.2.3": {"1.2.840.10045.4.3.4", "1.2.840.113549.1.1.13", "1.2.840.113549.1.1.1", "1.3.101.112"},
}


def _tlv(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of content, end) of the DER element at ``at``."""
    tag, length = data[at], data[at + 1]
    at += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[at : at + count], "big")
        at += count
    if at + length > len(data):
        raise ValueError("DER element runs past the end")
    return tag, at, at + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    while start < end:
        element = _tlv(data, start)
        out.append(element)
        start = element[2]
    return out


def _oid(data: bytes, element: tuple[int, int, int]) -> str:
    tag, start, end = element
    if tag != 0x06 or start == end:
        raise ValueError("not an OBJECT IDENTIFIER")
    arcs, value = [], 0
    for byte in data[start:end]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in (first, arcs[0] - 40 * first, *arcs[1:]))


def _unsigned_fields(token: bytes) -> tuple[int, int, str, str]:
    """(SignedData version, SignerInfo version, digestAlgorithm, signatureAlgorithm) of a TimeStampResp.

    TimeStampResp ::= SEQUENCE { status, timeStampToken ContentInfo } (RFC 3161 §2.4.2);
    ContentInfo ::= SEQUENCE { contentType, [0] SignedData } (RFC 5652 §3, §5.1, §5.3).
    """
    _, start, end = _tlv(token, 0)
    token_info = _children(token, start, end)[1]
    signed_data = _tlv(token, _children(token, token_info[1], token_info[2])[1][1])
    fields = _children(token, signed_data[1], signed_data[2])
    signer_infos = fields[-1]
    (signer_info,) = _children(token, signer_infos[1], signer_infos[2])
    parts = _children(token, signer_info[1], signer_info[2])
    # version, sid, digestAlgorithm, [0] signedAttrs (mandatory in a token: ESS, §2.4.2), signatureAlgorithm, …
    if len(parts) < 6 or parts[3][0] != 0xA0:
        raise ValueError("SignerInfo without signed attributes")
    digest = _children(token, parts[2][1], parts[2][2])[0]
    signature = _children(token, parts[4][1], parts[4][2])[0]
    version = int.from_bytes(token[fields[0][1] : fields[0][2]], "big")
    si_version = int.from_bytes(token[parts[0][1] : parts[0][2]], "big")
    return version, si_version, _oid(token, digest), _oid(token, signature)


def load_tsa_roots(data_or_path: bytes | Path | str) -> tuple[x509.Certificate, ...]:
    """The TSA CA certificate(s) from a PEM file (or PEM bytes); one file may hold several."""
    where = "(inline)" if isinstance(data_or_path, bytes) else str(data_or_path)
    try:
        source = data_or_path if isinstance(data_or_path, bytes) else Path(data_or_path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"TSA CA {where} cannot be read ({exc.strerror})", hint="check the path") from exc
    try:
        roots = tuple(x509.load_pem_x509_certificates(source))
    except ValueError as exc:
        raise ConfigError(
            f"TSA CA {where} holds no PEM certificate",
            hint="give the time-stamping authority's CA certificate in PEM",
        ) from exc
    return roots


@dataclass(frozen=True, slots=True)
class TimestampAuthority:
    """Where the cosigner asks for tokens, and the CA(s) its tokens must chain to."""

    url: str
    roots: tuple[x509.Certificate, ...]
    timeout_s: float = 5.0
    # After a failure, checkpoints go unstamped for this long instead of each waiting out a timeout.
    pause_s: float = 30.0


def load_timestamp_authority(path: Path) -> TimestampAuthority:
    """Read ``[timestamp] url / ca_file / timeout_s`` from a TOML file; a bad file names file and key."""
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the timestamp configuration ({exc})") from exc
    section = doc.get("timestamp")
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: no [timestamp] table", hint="add [timestamp] with url and ca_file")
    check_keys(doc, ("timestamp",), source=path, where="top")
    check_keys(section, ("url", "ca_file", "timeout_s"), source=path, where="timestamp")
    url, ca_file = section.get("url"), section.get("ca_file")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"{path}: timestamp.url must be an http(s) URL", hint="e.g. https://tsa.example/tsr")
    if not isinstance(ca_file, str) or not ca_file:
        raise ConfigError(f"{path}: timestamp.ca_file must name the TSA's CA certificate (PEM)")
    timeout = section.get("timeout_s", 5.0)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= 60:
        raise ConfigError(f"{path}: timestamp.timeout_s must be a number of seconds in (0, 60]")
    ca_path = (path.parent / ca_file) if not Path(ca_file).is_absolute() else Path(ca_file)
    try:
        roots = load_tsa_roots(ca_path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: timestamp.ca_file: {exc.message}", hint=exc.hint) from exc
    return TimestampAuthority(url, roots, float(timeout))


@dataclass(frozen=True, slots=True)
class TimestampCheck:
    time: datetime  # the TSA's genTime (UTC)
    serial: int  # the token's serial number at that TSA
    hash_hex: str  # the stamped SHA-256


def verify_timestamp(token: bytes, signed: bytes, roots: Sequence[x509.Certificate]) -> TimestampCheck:
    """Check ``token`` over ``signed`` against the trusted TSA CAs ``roots``; see the module steps."""
    if not roots:
        raise TimestampInvalid("a timestamp token is present but no TSA CA is trusted to check it")
    # 1. It parses, canonically, and was granted.
    try:
        response = decode_timestamp_response(token)
        info = response.tst_info
        imprint = info.message_imprint
    except Exception as exc:  # the parser raises its own (Rust-side) error types
        raise TimestampInvalid(f"the timestamp token does not parse ({type(exc).__name__})") from exc
    if response.as_bytes() != token:
        raise TimestampInvalid("the timestamp token is not in the exact DER form it parses to")
    if PKIStatus(response.status) not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
        raise TimestampInvalid(f"the TSA did not grant the timestamp (status {response.status})")
    # 2. Signature, chain to a trusted CA, timeStamping usage. The verifier also compares the
    # imprint with a digest we hand it; handing it the token's own imprint keeps that comparison
    # for step 3, where it is made against the checkpoint's bytes with the algorithm pinned.
    verifier = VerifierBuilder(roots=list(roots)).build()
    try:
        verifier.verify(response, imprint.message)
    except (VerificationError, ValueError) as exc:
        # The library's message embeds OpenSSL's error stack; the first clause is the readable part.
        reason = str(exc).split(": Unable", 1)[0]
        raise TimestampInvalid(f"the timestamp token does not verify to a trusted TSA CA ({reason})") from exc
    try:
        version, signer_version, digest_oid, signature_oid = _unsigned_fields(token)
    except (ValueError, IndexError) as exc:
        raise TimestampInvalid(f"the timestamp token's CMS structure is unexpected ({exc})") from exc
    if (version, signer_version) != (3, 1):  # RFC 5652 §5.1, §5.3 for a TSTInfo signed by issuer/serial
        raise TimestampInvalid(f"the timestamp token has CMS versions {version}/{signer_version}, not 3/1")
    if signature_oid not in _SIGNATURE_ALGORITHMS.get(digest_oid, set()):
        raise TimestampInvalid(f"the timestamp token's signature algorithm {signature_oid} does not match {digest_oid}")
    # 3. The imprint is the SHA-256 of the checkpoint's signed bytes.
    digest = hashlib.sha256(signed).digest()
    if imprint.hash_algorithm != _SHA256_OID:
        raise TimestampInvalid(f"the timestamp token hashes with {imprint.hash_algorithm.dotted_string}, not SHA-256")
    if imprint.message != digest:
        raise TimestampInvalid("the timestamp token is over other bytes than this checkpoint")
    return TimestampCheck(info.gen_time, info.serial_number, digest.hex())


class Timestamper:
    """Asks one TSA for tokens over HTTP (RFC 3161 §3.4) and keeps only tokens that verify."""

    def __init__(self, authority: TimestampAuthority, client: httpx.AsyncClient | None = None) -> None:
        self.authority = authority
        self._client = client or httpx.AsyncClient(timeout=authority.timeout_s)
        self._owns_client = client is None

    async def stamp(self, data: bytes) -> bytes:
        """The DER TimeStampResp over SHA-256(data); ``TimestampUnavailable`` when none is usable."""
        request = (
            TimestampRequestBuilder()
            .data(data)
            .hash_algorithm(HashAlgorithm.SHA256)
            .nonce(nonce=True)
            .cert_request(cert_request=True)  # the signer certificate must travel in the token
            .build()
        )
        try:
            reply = await self._client.post(
                self.authority.url,
                content=request.as_bytes(),
                headers={"content-type": "application/timestamp-query"},
                timeout=self.authority.timeout_s,
            )
        except httpx.HTTPError as exc:
            raise TimestampUnavailable(
                f"the TSA at {self.authority.url} did not answer ({type(exc).__name__})"
            ) from exc
        if reply.status_code != 200:
            raise TimestampUnavailable(f"the TSA at {self.authority.url} answered HTTP {reply.status_code}")
        token = reply.content
        try:
            verify_timestamp(token, data, self.authority.roots)
            response: TimeStampResponse = decode_timestamp_response(token)
        except TimestampInvalid as exc:
            raise TimestampUnavailable(
                f"the TSA at {self.authority.url} sent an unusable token: {exc.message}"
            ) from exc
        # A replayed answer to another request would carry another nonce (RFC 3161 §2.4.1).
        if response.tst_info.nonce != request.nonce:
            raise TimestampUnavailable(f"the TSA at {self.authority.url} answered with another request's nonce")
        return token

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
