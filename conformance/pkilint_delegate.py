"""pkilint, run in-process as a delegate (docs/conformance.md X-13, S-18, C-09, R-09).

Each linter is assembled the way pkilint's own command-line tools assemble it (``lint_pkix_cert``,
``lint_cabf_smime_cert``, ``lint_pkix_signer_signee_cert_chain``, ``lint_crl -p BR``,
``lint_ocsp_response``), built once and reused. Codes come back namespaced ``pkilint:<code>``.

pkilint (some 28 MB once imported) is imported on the first lint, not with this module: a process
that only answers OCSP from its cache or serves CRLs it already has never loads it.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from cryptography.utils import CryptographyDeprecationWarning

from jitsuin.conformance import shapes
from jitsuin.conformance.findings import Severity

if TYPE_CHECKING:
    from pkilint.validation import ValidatorContainer

NAMESPACE = "pkilint:"

_BUILDING = threading.RLock()
_F = TypeVar("_F", bound=Callable[..., Any])


def _built_once(build: _F) -> _F:
    """``functools.cache`` that builds each value once even when several threads ask at once:
    the server lints in worker threads, and building pkilint's S/MIME linter parses the Public
    Suffix List several times over (seconds), which eight simultaneous first enrollments would
    otherwise each do."""
    cached = functools.cache(build)

    @functools.wraps(build)
    def once(*args: Any) -> Any:
        with _BUILDING:
            return cached(*args)

    return cast(_F, once)


@functools.cache
def _severity() -> Mapping[Any, Severity]:
    from pkilint.validation import ValidationFindingSeverity

    return {
        ValidationFindingSeverity.FATAL: Severity.FATAL,
        ValidationFindingSeverity.ERROR: Severity.ERROR,
        ValidationFindingSeverity.WARNING: Severity.WARNING,
        ValidationFindingSeverity.NOTICE: Severity.NOTICE,
        ValidationFindingSeverity.INFO: Severity.INFO,
        ValidationFindingSeverity.DEBUG: Severity.INFO,
    }


@dataclass(frozen=True, slots=True)
class PkilintFinding:
    severity: Severity  # pkilint's own severity, on our scale
    code: str  # namespaced: pkilint:cabf.smime...
    message: str
    node_path: str


def _collect(results: Sequence[Any]) -> list[PkilintFinding]:
    from pkilint.validation import ValidationFindingSeverity

    severity = _severity()
    out = []
    for result in results:
        for described in result.finding_descriptions:
            finding = described.finding
            if finding.severity is ValidationFindingSeverity.DEBUG:
                continue
            out.append(
                PkilintFinding(
                    severity[finding.severity],
                    NAMESPACE + finding.code,
                    described.message or "",
                    str(result.node.path),
                )
            )
    return out


# -- certificates
@_built_once
def _pkix_certificate() -> ValidatorContainer:
    """As ``pkilint/bin/lint_pkix_cert.py`` assembles it."""
    from pkilint.pkix import certificate, extension, name

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


@_built_once
def _smime(level: str, generation: str) -> ValidatorContainer:
    """As ``lint_cabf_smime_cert lint -t LEVEL-GENERATION`` assembles it."""
    from pkilint.cabf import smime
    from pkilint.cabf.smime import smime_constants
    from pkilint.pkix import certificate

    return certificate.create_pkix_certificate_validator_container(
        smime.create_decoding_validators(),
        smime.create_subscriber_validators(
            smime_constants.ValidationLevel[level], smime_constants.Generation[generation]
        ),
    )


@_built_once
def _split(linter: str, *args: str) -> shapes.Split:
    return shapes.split(_smime(*args) if linter == "smime" else _pkix_certificate())


def lint_pkix_certificate(
    der: bytes, decoded: Any = None, cache: shapes.ShapeCache | None = None
) -> list[PkilintFinding]:
    """``decoded``: ``der`` as pyasn1-fasder decoded it already (pkilint's loader decodes with
    it too), so that it is not decoded again; a value no other linter has seen. ``cache``: lint
    incrementally (conformance/shapes.py), keeping what holds for the draft's shape there."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        doc = _certificate_document(der, decoded)
        key = shapes.shape_key(der) if cache is not None else None
        if cache is None or key is None:
            return _collect(_pkix_certificate().validate(doc.root))
        results, kept = shapes.lint(_split("pkix"), doc.root, cache.get("pkix", key))
        cache.put("pkix", key, kept)
        return _collect(results)


def _certificate_document(der: bytes, decoded: Any) -> Any:
    """What ``loader.load_der_certificate(der, "certificate")`` makes, from ``decoded``."""
    from pkilint import document, loader
    from pkilint.pkix.certificate import RFC5280Certificate

    if decoded is None or not der.startswith(b"\x30"):
        return loader.load_der_certificate(der, "certificate")
    doc = RFC5280Certificate(None, der, "certificate")
    doc.root = document.create_and_append_node_from_pdu(doc, decoded)
    return doc


def lint_smime_certificate(
    der: bytes, decoded: Any = None, cache: shapes.ShapeCache | None = None
) -> tuple[str, list[PkilintFinding]]:
    """(type linted, findings). The type comes from the reserved policy OID (pkilint
    ``--detect``), defaulting to INDIVIDUAL-MULTIPURPOSE, the seed profile (docs/conformance.md
    S-18). ``decoded``, ``cache``: as for ``lint_pkix_certificate`` (the type, read from the
    policies, is kept with the shape)."""
    from pkilint.cabf import smime

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        doc = _certificate_document(der, decoded)
        key = shapes.shape_key(der) if cache is not None else None
        known = cache.get("smime", key) if cache is not None and key is not None else None
        if known is not None:
            (level, generation), kept = known
        else:
            detected = smime.determine_validation_level_and_generation(doc)
            level, generation = ("INDIVIDUAL", "MULTIPURPOSE")
            if detected is not None:
                level, generation = detected[0].name, detected[1].name
            kept = None
        if cache is None or key is None:
            return f"{level}-{generation}", _collect(_smime(level, generation).validate(doc.root))
        results, kept = shapes.lint(_split("smime", level, generation), doc.root, kept)
        cache.put("smime", key, ((level, generation), kept))
        return f"{level}-{generation}", _collect(results)


# -- issuer/subject pairs (lint_pkix_signer_signee_cert_chain)
@_built_once
def _chain(verify_signature: bool) -> tuple[ValidatorContainer, ...]:
    from pkilint import document, pkix
    from pkilint.pkix import algorithm, certificate, extension, key, name
    from pkilint.pkix.certificate import certificate_extension, certificate_key
    from pkilint.validation import ValidatorContainer
    from pyasn1_alt_modules import rfc5280

    decoding = ValidatorContainer(
        validators=[
            pkix.create_attribute_decoder(name.ATTRIBUTE_TYPE_MAPPINGS),
            pkix.create_extension_decoder(extension.EXTENSION_MAPPINGS),
            pkix.create_signature_algorithm_identifier_decoder(
                algorithm.SIGNATURE_ALGORITHM_IDENTIFIER_MAPPINGS,
                path="certificate.tbsCertificate.signature",
            ),
            certificate.create_spki_decoder(
                key.SUBJECT_PUBLIC_KEY_ALGORITHM_IDENTIFIER_MAPPINGS,
                key.SUBJECT_KEY_PARAMETER_ALGORITHM_IDENTIFIER_MAPPINGS,
            ),
        ],
        path="certificate",
    )
    issuer = ValidatorContainer(
        validators=[
            name.IssuerSubjectNameBinaryEqualValidator(
                path="certificate.tbsCertificate.subject",
                subject_document_issuer_dn_path="subject:certificate.tbsCertificate.issuer",
            ),
            extension.IssuerSubjectKeyIdentifierBinaryEqualValidator(
                subject_auth_key_id_retriever=lambda n: document.get_document_by_name(
                    n, "subject"
                ).get_extension_by_oid(rfc5280.id_ce_authorityKeyIdentifier)
            ),
            certificate_extension.IssuerSubjectPolicyChainValidator(),
        ]
    )
    subject = ValidatorContainer(
        validators=[
            certificate_key.SubjectSignatureVerificationValidator(
                tbs_node_retriever=lambda n: n.navigate("^.tbsCertificate"),
                path="certificate.signature",
            )
        ]
        if verify_signature
        else []
    )
    return decoding, issuer, subject


def lint_issuer_subject(
    issuer_der: bytes, subject_der: bytes, *, verify_signature: bool = True
) -> list[PkilintFinding]:
    from pkilint import loader

    collection: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        issuer = loader.load_der_certificate(issuer_der, "issuer", "issuer", collection)
        collection["issuer"] = issuer
        subject = loader.load_der_certificate(subject_der, "subject", "subject", collection)
        collection["subject"] = subject
        decoding, issuer_checks, subject_checks = _chain(verify_signature)
        results = decoding.validate(issuer.root) + decoding.validate(subject.root)
        results += issuer_checks.validate(issuer.root)
        results += subject_checks.validate(subject.root)
    return _collect(results)


# -- CRLs and OCSP responses
@_built_once
def _crl(ca_crl: bool) -> ValidatorContainer:
    """As ``lint_crl -t CRL|ARL -p BR`` assembles it."""
    from pkilint import pkix
    from pkilint.cabf import cabf_crl
    from pkilint.pkix import crl, extension, name

    crl_type = (
        crl.CertificateRevocationListType.ARL if ca_crl else crl.CertificateRevocationListType.CRL
    )
    return crl.create_pkix_crl_validator_container(
        [
            pkix.create_attribute_decoder(name.ATTRIBUTE_TYPE_MAPPINGS),
            pkix.create_extension_decoder(extension.EXTENSION_MAPPINGS),
        ],
        [
            crl.create_issuer_validator_container([]),
            crl.create_validity_validator_container(
                [cabf_crl.create_validity_period_validator(crl_type)]
            ),
            crl.create_extensions_validator_container([]),
            cabf_crl.CabfCrlReasonCodeAllowlistValidator(crl_type),
        ],
    )


@_built_once
def _ocsp() -> ValidatorContainer:
    """As ``lint_ocsp_response`` assembles it."""
    from pkilint import pkix
    from pkilint.pkix import extension, name, ocsp

    return ocsp.create_pkix_ocsp_response_validator_container(
        [
            ocsp.create_response_decoder(),
            pkix.create_attribute_decoder(name.ATTRIBUTE_TYPE_MAPPINGS),
            pkix.create_extension_decoder(extension.EXTENSION_MAPPINGS),
        ],
        [],
    )


def lint_crl(der: bytes, *, ca_crl: bool = False) -> list[PkilintFinding]:
    from pkilint import loader

    doc = loader.load_der_crl(der, "crl")
    return _collect(_crl(ca_crl).validate(doc.root))


def lint_ocsp_response(der: bytes) -> list[PkilintFinding]:
    from pkilint import loader

    doc = loader.load_der_ocsp_response(der, "ocsp")
    return _collect(_ocsp().validate(doc.root))


def validations() -> dict[str, list[str]]:
    """The codes each assembled linter can report (pkilint ``validations``), for the snapshot
    that shows new upstream codes in review."""

    def codes(*containers: ValidatorContainer) -> list[str]:
        return sorted({v.code for c in containers for v in c.validations})

    return {
        "lint_pkix_cert": codes(_pkix_certificate()),
        "lint_cabf_smime_cert INDIVIDUAL-MULTIPURPOSE": codes(_smime("INDIVIDUAL", "MULTIPURPOSE")),
        "lint_pkix_signer_signee_cert_chain": codes(*_chain(True)),
        "lint_crl -t CRL -p BR": codes(_crl(False)),
        "lint_crl -t ARL -p BR": codes(_crl(True)),
        "lint_ocsp_response": codes(_ocsp()),
    }
