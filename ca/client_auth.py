"""May a certificate serve as a TLS client credential of this CA's operators? The PKI half of the
decision (who signed it: ``issuing_generation`` in ca/generations.py; its validity period, its key
purposes); the store half (is it the certificate this CA recorded, is it revoked) belongs to the
server, which holds the store."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID


def client_auth_refusal(cert: x509.Certificate, now: dt.datetime) -> str | None:
    """Why ``cert`` cannot authenticate a TLS client at ``now``, or None if it can."""
    # RFC 5280 §4.1.2.5: the certificate is only valid within its validity period.
    if now < cert.not_valid_before_utc:
        return f"the certificate is not valid before {cert.not_valid_before_utc.isoformat()}"
    if now > cert.not_valid_after_utc:
        return f"the certificate expired at {cert.not_valid_after_utc.isoformat()}"
    # RFC 5280 §4.2.1.12: with an extended key usage extension the certificate may be used only
    # for the purposes it lists; TLS WWW client authentication is id-kp-clientAuth. Ours always
    # carry the extension (S/MIME BR 7.1.2.3f), so its absence is refused too.
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return "the certificate has no extended key usage with clientAuth (RFC 5280 §4.2.1.12)"
    if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        return "the certificate's extended key usage lacks clientAuth (RFC 5280 §4.2.1.12)"
    # RFC 8446 §4.4.2.2 / RFC 5280 §4.2.1.3: the client signs the handshake (CertificateVerify)
    # with the certified key, so the key usage, where present, must allow digitalSignature.
    try:
        key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    if not key_usage.digital_signature:
        return "the certificate's key usage lacks digitalSignature (RFC 8446 §4.4.2.2)"
    return None
