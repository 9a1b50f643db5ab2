"""``jitsuin est``: an RFC 7030 client usable against any EST server. The key pair and CSR are made
here and the private key never leaves this machine; 202 + Retry-After is waited out up to a limit,
resending the same CSR (RFC 7030 §4.2.3)."""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from jitsuin.ca.keys import KeyType, PrivateKey, generate_private_key
from jitsuin.protocol import est
from jitsuin.server.cli_errors import EXIT_REFUSED, CLIError, ask_secret

PASSWORD_ENV = "JITSUIN_EST_PASSWORD"  # noqa: S105 (a variable name)
EXIT_PENDING = 3
# RFC 7030 §3.2.2: the operations under the base ("/.well-known/est[/label]"). A URL ending in one
# (the PIN e-mail gives the .../simpleenroll URL) is taken as its base.
_OPERATIONS = ("cacerts", "csrattrs", "simpleenroll", "simplereenroll", "serverkeygen", "fullcmc")


class ESTClientError(CLIError):
    def __init__(self, message: str, code: int = EXIT_REFUSED) -> None:
        super().__init__(message, code)


def est_base(url: str) -> str:
    """The EST base of ``url``: itself, or without a trailing operation (RFC 7030 §3.2.2)."""
    base = url.rstrip("/")
    head, _, last = base.rpartition("/")
    return head if last in _OPERATIONS else base


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    retry_after: int | None
    content_type: str


def _tls(ca_bundle: str | None, cert: str | None = None, key: str | None = None) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise ESTClientError(
            f"--ca-bundle {ca_bundle}: {_reason(exc)} (the CA certificate in PEM, e.g. from "
            "http://<host>:<port>/ca.pem)"
        ) from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # RFC 7030 §3.3.1; RFC 8996
    if cert and key:
        try:
            context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise ESTClientError(f"--cert {cert} --key {key}: {_reason(exc)}") from exc
    return context


def _reason(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return f"not usable: {exc.reason or exc}"
    return (exc.strerror or str(exc)).lower()


async def _call(
    method: str,
    url: str,
    context: ssl.SSLContext,
    *,
    body: bytes | None = None,
    authorization: str | None = None,
) -> Reply:
    headers = {"Content-Type": est.PKCS10} if body is not None else {}
    if authorization is not None:
        headers["Authorization"] = authorization
    timeout = aiohttp.ClientTimeout(total=60)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(method, url, data=body, headers=headers, ssl=context) as r,
        ):
            raw = r.headers.get("Retry-After", "")
            return Reply(
                r.status,
                await r.read(),
                int(raw) if raw.isdigit() else None,
                r.headers.get("Content-Type", ""),
            )
    except aiohttp.ClientConnectorCertificateError as exc:
        problem = exc.certificate_error
        reason = getattr(problem, "verify_message", None) or getattr(problem, "reason", problem)
        raise ESTClientError(
            f"{url}: the server's TLS certificate does not verify ({reason}): give its CA "
            "certificate with --ca-bundle"
        ) from exc
    except aiohttp.ClientConnectorError as exc:
        reason = exc.os_error.strerror or exc.os_error
        raise ESTClientError(f"{url}: cannot connect to {exc.host}:{exc.port}: {reason}") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise ESTClientError(f"{url}: {exc}") from exc


def _failure(reply: Reply, what: str) -> ESTClientError:
    reason = reply.body.decode("utf-8", "replace").strip()[:500]
    return ESTClientError(f"{what} refused: HTTP {reply.status}: {reason}")


def _certificates(reply: Reply) -> list[x509.Certificate]:
    try:
        return pkcs7.load_der_pkcs7_certificates(est.decode_base64_body(reply.body))
    except (ValueError, est.BadBody) as exc:
        raise ESTClientError(f"the server's answer is not a certs-only PKCS#7: {exc}") from exc


def _pem(certificates: list[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def _write(path: str, data: bytes, private: bool = False) -> None:
    target = Path(path)
    if private:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    else:
        target.write_bytes(data)


def _key_and_csr(args: argparse.Namespace) -> tuple[PrivateKey, bytes]:
    """Reuse the key and CSR files when they exist (so a retry sends the same CSR), else make
    them: the key is written with mode 0600 before anything is sent."""
    key_path, csr_path = Path(args.key_out), Path(args.csr_out)
    if key_path.exists():
        try:
            loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise ESTClientError(
                f"--key-out {key_path} exists but is not an unencrypted PEM private key: move it "
                "away, or name another file"
            ) from exc
        key: PrivateKey = loaded  # type: ignore[assignment]
    else:
        key = generate_private_key(KeyType.parse(args.key_type))
        _write(
            args.key_out,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            private=True,
        )
    if csr_path.exists():
        try:
            csr = x509.load_der_x509_csr(csr_path.read_bytes())
        except ValueError as exc:
            raise ESTClientError(
                f"--csr-out {csr_path} exists but is not a DER CSR: move it away, or name "
                "another file"
            ) from exc
        if csr.public_key() == key.public_key():
            return key, csr_path.read_bytes()
    names = [x509.NameAttribute(x509.NameOID.COMMON_NAME, args.subject)] if args.subject else []
    request = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names))
    der = request.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    csr_path.write_bytes(der)
    return key, der


async def _enroll_loop(
    url: str, context: ssl.SSLContext, csr: bytes, wait: int, **kw: object
) -> Reply:
    waited = 0
    while True:
        reply = await _call("POST", url, context, body=est.encode_base64_body(csr), **kw)  # type: ignore[arg-type]
        if reply.status != 202:
            return reply
        delay = reply.retry_after or 60
        if waited + delay > wait:
            raise ESTClientError(
                f"the server asks to retry in {delay} s (RFC 7030 §4.2.3); run the same command "
                "again later: it resends the same CSR",
                EXIT_PENDING,
            )
        print(f"pending; retrying in {delay} s", file=sys.stderr)
        await asyncio.sleep(delay)
        waited += delay


def _save(
    args: argparse.Namespace,
    key: PrivateKey,
    certificate: x509.Certificate,
    p12_passphrase: bytes | None,
) -> None:
    """Written after the PIN is spent: whatever fails here says where what was obtained is."""
    pem = _pem([certificate])
    try:
        _write(args.out, pem)
    except OSError as exc:
        sys.stdout.write(pem.decode())  # the only copy: print it rather than lose it
        raise ESTClientError(
            f"cannot write the certificate to {args.out}: {_reason(exc)}; it is printed above "
            f"(the PIN is spent), and its private key is {args.key_out}"
        ) from exc
    print(f"certificate: {args.out} ({certificate.subject.rfc4514_string()})")
    print(f"private key: {args.key_out}")
    if p12_passphrase is not None:
        encryption = (
            serialization.PrivateFormat.PKCS12.encryption_builder()
            .kdf_rounds(600_000)
            .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
            .hmac_hash(hashes.SHA256())
            .build(p12_passphrase)
        )
        data = pkcs12.serialize_key_and_certificates(b"jitsuin", key, certificate, None, encryption)
        try:
            _write(args.p12, data, private=True)
        except OSError as exc:
            raise ESTClientError(
                f"cannot write the PKCS#12 {args.p12}: {_reason(exc)}; the certificate is in "
                f"{args.out} and its private key in {args.key_out} (the PIN is spent): make the "
                f"PKCS#12 from them, e.g. openssl pkcs12 -export -in {args.out} -inkey "
                f"{args.key_out} -out {args.p12}"
            ) from exc
        print(f"PKCS#12: {args.p12}")


def _check_outputs(args: argparse.Namespace) -> None:
    """Before anything is sent: the files written after the PIN is spent need a directory."""
    for flag, path in (("--out", args.out), ("--p12", args.p12)):
        if path and not Path(path).absolute().parent.is_dir():
            raise ESTClientError(f"{flag} {path}: no such directory; nothing was sent", 2)


def _p12_passphrase(args: argparse.Namespace) -> bytes | None:
    """The PKCS#12 passphrase, asked before anything is sent: once the PIN is spent, a failure
    to get it would leave a certificate without the file the user asked for."""
    if not args.p12:
        return None
    if args.p12_passphrase_file:
        try:
            passphrase = Path(args.p12_passphrase_file).read_bytes().strip()
        except OSError as exc:
            raise ESTClientError(
                f"--p12-passphrase-file {args.p12_passphrase_file}: {_reason(exc)}", 2
            ) from exc
    else:
        instead = "give --p12-passphrase-file FILE"
        passphrase = ask_secret("PKCS#12 passphrase: ", instead).encode()
        if ask_secret("PKCS#12 passphrase again: ", instead).encode() != passphrase:
            raise ESTClientError("the two PKCS#12 passphrases differ; nothing was sent", 2)
    if not passphrase:
        raise ESTClientError("an empty PKCS#12 passphrase would leave the key unprotected", 2)
    return passphrase


async def cmd_cacerts(args: argparse.Namespace) -> int:
    reply = await _call("GET", f"{est_base(args.url)}/cacerts", _tls(args.ca_bundle))
    if reply.status != 200:
        raise _failure(reply, "cacerts")
    certificates = _certificates(reply)
    _write(args.out, _pem(certificates))
    for c in certificates:
        print(f"{c.subject.rfc4514_string()}  SHA-256 {c.fingerprint(hashes.SHA256()).hex()}")
    return 0


async def cmd_csrattrs(args: argparse.Namespace) -> int:
    reply = await _call("GET", f"{est_base(args.url)}/csrattrs", _tls(args.ca_bundle))
    if reply.status == 204:
        print("the server states no CSR attributes")
        return 0
    if reply.status != 200:
        raise _failure(reply, "csrattrs")
    for oid, values in est.parse_csr_attributes(est.decode_base64_body(reply.body)):
        print(oid, " ".join(v.hex() for v in values))
    return 0


async def cmd_enroll(args: argparse.Namespace) -> int:
    context = _tls(args.ca_bundle)
    _check_outputs(args)
    password = os.environ.get(PASSWORD_ENV) or ask_secret(
        "download PIN: ", f"set ${PASSWORD_ENV} to the PIN"
    )
    p12_passphrase = _p12_passphrase(args)
    key, csr = _key_and_csr(args)
    reply = await _enroll_loop(
        f"{est_base(args.url)}/simpleenroll",
        context,
        csr,
        args.wait,
        # RFC 7030 §3.2.3 / RFC 7617: the enrollment ID and the download PIN, inside TLS.
        authorization=aiohttp.encode_basic_auth(args.user, password),
    )
    if reply.status != 200:
        raise _failure(reply, "simpleenroll")
    _save(args, key, _certificates(reply)[0], p12_passphrase)
    return 0


async def cmd_reenroll(args: argparse.Namespace) -> int:
    context = _tls(args.ca_bundle, args.cert, args.key)
    _check_outputs(args)
    p12_passphrase = _p12_passphrase(args)
    key, csr = _key_and_csr(args)
    reply = await _enroll_loop(f"{est_base(args.url)}/simplereenroll", context, csr, args.wait)
    if reply.status != 200:
        raise _failure(reply, "simplereenroll")
    _save(args, key, _certificates(reply)[0], p12_passphrase)
    return 0


def _seconds(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"not a whole number of seconds: {value!r}")
    return int(value)


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    est_parser = sub.add_parser("est", help="EST client (RFC 7030), for any EST server")
    commands = est_parser.add_subparsers(dest="est_command", required=True)

    def command(name: str, handler: object, help_text: str) -> argparse.ArgumentParser:
        p = commands.add_parser(name, help=help_text)
        p.add_argument(
            "--url",
            required=True,
            help="EST base, e.g. https://localhost:8443/.well-known/est/document-manager; the "
            ".../simpleenroll URL of the PIN e-mail works too",
        )
        p.add_argument(
            "--ca-bundle",
            help="trust these CA certificates (PEM) for the server's TLS, e.g. the CA's "
            "http://<host>:<port>/ca.pem (default: the system's trust store)",
        )
        p.set_defaults(handler=handler)
        return p

    p = command("cacerts", cmd_cacerts, "fetch the CA certificates")
    p.add_argument("--out", default="cacerts.pem")
    command("csrattrs", cmd_csrattrs, "show the CSR attributes the server asks for")
    for name, handler, help_text in (
        ("enroll", cmd_enroll, "enroll with a user name and password (the download PIN)"),
        ("reenroll", cmd_reenroll, "re-enroll with the current certificate (a new key)"),
    ):
        p = command(name, handler, help_text)
        if name == "enroll":
            p.add_argument("--user", required=True, help="user name (the enrollment ID)")
        else:
            p.add_argument("--cert", required=True, help="the current certificate (PEM)")
            p.add_argument("--key", required=True, help="the current private key (PEM)")
        p.add_argument("--key-type", default="ecdsa-p256", choices=[k.value for k in KeyType])
        p.add_argument(
            "--key-out", default="est-key.pem", help="new private key (reused if it exists)"
        )
        p.add_argument("--csr-out", default="est-req.der", help="the CSR (reused for retries)")
        p.add_argument("--subject", help="CN to put in the CSR (the CA may replace it)")
        p.add_argument("--out", default="est-cert.pem", help="the certificate (PEM)")
        p.add_argument(
            "--p12",
            help="also write a PKCS#12 (PBES2/AES-256, HMAC-SHA256) for a browser or mail client; "
            "asks for its passphrase twice on the terminal, before anything is sent",
        )
        p.add_argument(
            "--p12-passphrase-file",
            metavar="FILE",
            help="read the PKCS#12 passphrase from FILE instead of asking (surrounding "
            "whitespace is dropped)",
        )
        p.add_argument(
            "--wait",
            type=_seconds,
            default=0,
            help="wait up to this many seconds on 202",
        )
