"""The pre-issuance lint gate: pkilint runs on every draft before the CA signs it (the S/MIME BR
require pre-issuance linting, SBR 4.3.1.2; CONFORMANCE X-13, S-18).

Findings at WARNING or above block issuance, except codes the operator suppressed with a reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pkilint import loader
from pkilint.cabf import smime
from pkilint.cabf.smime import smime_constants
from pkilint.pkix import certificate, extension, name
from pkilint.validation import ValidationFindingSeverity

from jitsuin.ca.profiles import Profile

_BLOCKING = (
    ValidationFindingSeverity.WARNING,
    ValidationFindingSeverity.ERROR,
    ValidationFindingSeverity.FATAL,
)

# A loopback or private host in CRL/OCSP/caIssuers URLs is right for a development CA and wrong
# for a public one; the embedded default configuration suppresses it with this reason.
LOOPBACK_SUPPRESSION = {
    "cabf.internal_domain_name": "the development CA publishes CRL, OCSP and CA certificate "
    "URLs on a loopback address",
}


def _smime_validator():  # type: ignore[no-untyped-def]
    return certificate.create_pkix_certificate_validator_container(
        smime.create_decoding_validators(),
        smime.create_subscriber_validators(
            smime_constants.ValidationLevel.INDIVIDUAL, smime_constants.Generation.MULTIPURPOSE
        ),
    )


def _pkix_validator():  # type: ignore[no-untyped-def]
    return certificate.create_pkix_certificate_validator_container(
        certificate.create_decoding_validators(
            name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS
        ),
        [
            certificate.create_issuer_validator_container([]),
            certificate.create_validity_validator_container(),
            certificate.create_subject_validator_container([]),
            certificate.create_extensions_validator_container([]),
            certificate.create_spki_validator_container([]),
        ],
    )


@dataclass
class PkilintGate:
    """Callable as ``jitsuin.ca.issuance.Lint``: returns the blocking findings of a draft."""

    suppressed: Mapping[str, str] = field(default_factory=dict)  # code -> reason

    def __post_init__(self) -> None:
        self._smime = _smime_validator()
        self._pkix = _pkix_validator()

    def findings(self, der: bytes, personal: bool) -> list[tuple[str, str, str]]:
        """(severity, code, message) of every finding at WARNING or above, not suppressed."""
        out = []
        for validator in (self._smime, self._pkix) if personal else (self._pkix,):
            document = loader.load_der_certificate(der, "draft")
            for result in validator.validate(document.root):
                for described in result.finding_descriptions:
                    finding = described.finding
                    if finding.severity not in _BLOCKING or finding.code in self.suppressed:
                        continue
                    message = described.message or ""
                    out.append((finding.severity.name, finding.code, message))
        return out

    def __call__(self, draft: x509.Certificate, profile: Profile) -> Sequence[str]:
        der = draft.public_bytes(serialization.Encoding.DER)
        return [
            f"pkilint {severity} {code}" + (f": {message}" if message else "")
            for severity, code, message in self.findings(der, profile.personal)
        ]
