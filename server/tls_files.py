"""The HTTPS listener's own certificate: configured files, or a certificate from this CA kept
current across rollovers and shared by every server process of the data directory. A part of
``Authority`` (server/ca_state.py lists the others): it issues through ``sign_tls_server`` and
records through ``_record`` (server/authority.py), after ``refresh`` (server/ca_refresh.py)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from jitsuin.ca.generations import issuing_generation
from jitsuin.ca.keys import KeyType, generate_private_key
from jitsuin.server.ca_state import AuthorityState
from jitsuin.server.secret_files import write_secret

TLS_RENEW_BEFORE_DAYS = 30
# How often a process waiting for another's reissue of the HTTPS certificate looks again.
TLS_LOCK_POLL_SECONDS = 0.05


class TLSFiles(AuthorityState):
    async def tls_files(self) -> tuple[Path, Path]:
        """The HTTPS listener's certificate chain and key: configured files, or a certificate
        from this CA, reissued when missing, near expiry, from an older generation, for other
        names, or with another chain than ``_tls_links`` gives."""
        async with self._tls_files_locked():
            return await self._tls_files()

    async def load_tls(self, context: ssl.SSLContext) -> bytes:
        """Load the certificate chain of ``tls_files`` into a listener's live context, so that
        new handshakes present it (established connections keep theirs); the chain loaded.
        Called at start, after every rollover this process learns of, and now and then for
        expiry; the lock keeps another process from replacing the files between the check and
        the load."""
        async with self._tls_files_locked():
            cert_file, key_file = await self._tls_files()
            context.load_cert_chain(cert_file, key_file)
            return cert_file.read_bytes()

    @contextlib.asynccontextmanager
    async def _tls_files_locked(self) -> AsyncIterator[None]:
        """An exclusive lock on ``tls/`` across processes (``serve --workers N``, or a restart
        beside a running server): the first process to see a rollover issues the new server
        certificate, the others wait and find it current, so one certificate is made per
        rollover and data directory."""
        directory = self.config.home / "tls"
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:  # polled, not a blocking call in a thread: cancellation stays clean
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(TLS_LOCK_POLL_SECONDS)
            yield
        finally:
            os.close(fd)  # releases the lock

    async def _tls_files(self) -> tuple[Path, Path]:
        server = self.config.server
        if server.tls_cert_file and server.tls_key_file:
            return server.tls_cert_file, server.tls_key_file
        # Another process may have rolled over: judge the files against the newest generation.
        await self.refresh()
        cert_path = self.config.home / "tls" / "server.pem"
        key_path = self.config.home / "tls" / "server.key"
        if cert_path.exists() and key_path.exists() and self._tls_current(cert_path, key_path):
            return cert_path, key_path
        key = generate_private_key(KeyType.ECDSA_P256)
        dns = [n for n in server.tls_names if not _is_ip(n)]
        ips = [ipaddress.ip_address(n) for n in server.tls_names if _is_ip(n)]
        issued = await self.sign_tls_server(
            key.public_key(), dns, ips, requester="system", target="tls/server"
        )
        # The server's own certificate is audited like any other, with its names.
        await self._record(
            issued,
            None,
            None,
            "system",
            "tls/server",
            {
                "purpose": "server TLS",
                "serial": format(issued.serial, "x"),
                "generation": issued.generation,
                "sans": list(server.tls_names),
            },
        )
        write_secret(
            key_path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        chain = b"".join(
            c.public_bytes(serialization.Encoding.PEM)
            for c in [issued.certificate, *self._tls_links()]
        )
        write_secret(cert_path, chain)
        return cert_path, key_path

    def _tls_links(self) -> list[x509.Certificate]:
        """What the listener sends after its leaf: the NewWithOld link into the current
        generation while it is valid (RFC 9810 §4.4: the new public key signed with the old
        private key). A client that still trusts only the previous generation's ca.pem builds
        leaf -> NewWithOld -> old anchor; one that trusts the new ca.pem stops at its anchor,
        the leaf's issuer, and never uses the link. Older links are not sent: a client two
        generations behind has a trust anchor outside the overlap the link certificates
        cover (SEED-R17)."""
        now = self.clock.now()
        return [
            link.new_with_old
            for link in self.links
            if link.new == self.current.number and now < link.new_with_old.not_valid_after_utc
        ]

    def _tls_current(self, path: Path, key_path: Path) -> bool:
        try:
            leaf, *rest = x509.load_pem_x509_certificates(path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        except (ValueError, TypeError):
            return False
        if key.public_key() != leaf.public_key():  # a reissue cut short between the two files
            return False
        remaining = leaf.not_valid_after_utc - self.clock.now()
        try:
            names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return False
        have = {str(n.value) for n in names}
        return (
            remaining.days > TLS_RENEW_BEFORE_DAYS
            and issuing_generation(leaf, [self.current]) is self.current
            and have == set(self.config.server.tls_names)
            and rest == self._tls_links()
        )


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
