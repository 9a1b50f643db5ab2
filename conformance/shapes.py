"""Incremental pkilint for the pre-issuance gate, ``[ca] lint = "incremental"``
(docs/conformance.md, "Incremental lint").

A draft's TBSCertificate is its *shape* (version, signature algorithm, issuer, the tags, types and
order of every field, subject attribute types, key algorithm and key length, every extension's
OID, criticality and value except two) plus its *value slots*: the serial number, notBefore and
notAfter, the value of each subject attribute, the subjectPublicKey bits, the subject key
identifier and each subjectAltName entry. ``shape_key`` writes the DER with the slot contents left
out; two drafts with equal keys are byte-identical outside their slots.

pkilint's validators are split in two (``split``). Those that read nothing inside a slot
(``SHAPE_VALIDATORS``, each named with what it reads) give the same findings for every draft of a
shape: they run on the first draft of a shape and their findings are kept. Every other validator,
and every decoder, runs on every draft. A validator pkilint adds in a new release is in neither
list and so runs on every draft: the split can cost time, never a finding. The findings of a draft
are the kept findings of its shape plus those of the per-draft run: exactly what the whole
linter reports (tests/conformance/test_incremental.py and ``bench/run.py lint-diff`` compare the
two on the conformance cases, on everything jitsuin issues and on randomized and mutated drafts).
"""

from __future__ import annotations

import copy
import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pkilint.validation import ValidatorContainer

# -- the shape of a draft

# DER of the extension OIDs whose value is a slot: subjectKeyIdentifier, subjectAltName.
_SKI_OID = bytes.fromhex("0603551d0e")
_SAN_OID = bytes.fromhex("0603551d11")
_SEQUENCE, _SET, _OCTET_STRING = 0x30, 0x31, 0x04
_EXTENSIONS = 0xA3


class NotDER(ValueError):
    """The bytes are not TLVs with single-byte tags and minimal definite lengths: the draft gets
    the whole linter."""


def _tlvs(data: bytes) -> list[tuple[int, bytes]]:
    """(tag, content) of each TLV in ``data``, which they must fill exactly."""
    out = []
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            raise NotDER("truncated")
        tag = data[i]
        if tag & 0x1F == 0x1F:
            raise NotDER("multi-byte tag")
        first = data[i + 1]
        i += 2
        if first < 0x80:
            length = first
        else:
            count = first & 0x7F
            if count == 0 or count > 4 or i + count > len(data):
                raise NotDER("indefinite or oversized length")
            length = int.from_bytes(data[i : i + count], "big")
            if length < 0x80 or data[i] == 0:
                raise NotDER("non-minimal length")  # X.690 §10.1
            i += count
        if i + length > len(data):
            raise NotDER("truncated")
        out.append((tag, data[i : i + length]))
        i += length
    return out


class _Key:
    """Writes the shape: a primitive as tag, 0, length, content; a constructed TLV as tag, 1,
    its children, 2; a slot as tag, 3 (its content and length left out) or tag, 4, length (the
    length kept: the key's size is part of the shape)."""

    def __init__(self) -> None:
        self.out = bytearray()

    def whole(self, tag: int, content: bytes) -> None:
        if tag & 0x20:
            self.out += bytes((tag, 1))
            for child in _tlvs(content):
                self.whole(*child)
            self.out += b"\x02"
        else:
            self.out += bytes((tag, 0)) + len(content).to_bytes(4, "big") + content

    def slot(self, tag: int, content: bytes, keep_length: bool = False) -> None:
        self.out += (
            bytes((tag, 4)) + len(content).to_bytes(4, "big") if keep_length else bytes((tag, 3))
        )

    def open(self, tag: int) -> None:
        self.out += bytes((tag, 1))

    def close(self) -> None:
        self.out += b"\x02"


def _name(key: _Key, tag: int, content: bytes) -> None:
    """A Name: RDNs and attribute types kept, each attribute value a slot (its string type
    kept)."""
    key.open(tag)
    for rdn_tag, rdn in _tlvs(content):
        if rdn_tag != _SET:
            key.whole(rdn_tag, rdn)
            continue
        key.open(rdn_tag)
        for atv_tag, atv in _tlvs(rdn):
            parts = _tlvs(atv) if atv_tag == _SEQUENCE else []
            if len(parts) != 2:
                key.whole(atv_tag, atv)
                continue
            key.open(atv_tag)
            key.whole(*parts[0])
            key.slot(*parts[1])
            key.close()
        key.close()
    key.close()


def _extension(key: _Key, tag: int, content: bytes) -> None:
    parts = _tlvs(content) if tag == _SEQUENCE else []
    oid = parts[0] if parts else None
    value = parts[-1] if parts else None
    slot = oid is not None and bytes((oid[0], len(oid[1]))) + oid[1] in (_SKI_OID, _SAN_OID)
    if not slot or value is None or value[0] != _OCTET_STRING or len(parts) not in (2, 3):
        key.whole(tag, content)
        return
    key.open(tag)
    for part in parts[:-1]:
        key.whole(*part)
    inner = _tlvs(value[1])
    key.open(_OCTET_STRING)
    if len(inner) == 1 and oid is not None and oid[1] == _SKI_OID[2:]:
        key.slot(*inner[0], keep_length=True)  # the key identifier
    elif len(inner) == 1 and inner[0][0] == _SEQUENCE:
        key.open(_SEQUENCE)
        for general_name in _tlvs(inner[0][1]):
            key.slot(*general_name)  # each subjectAltName entry, its type kept
        key.close()
    else:
        for part in inner:
            key.whole(*part)
    key.close()
    key.close()


def shape_key(der: bytes) -> bytes | None:
    """The certificate with its value slots left out (see the module docstring), or None when it
    is not DER enough to cut into slots."""
    try:
        outer = _tlvs(der)
        if len(outer) != 1 or outer[0][0] != _SEQUENCE:
            return None
        certificate = _tlvs(outer[0][1])
        if len(certificate) != 3 or certificate[0][0] != _SEQUENCE:
            return None
        fields = _tlvs(certificate[0][1])
        key = _Key()
        index = 1 if fields and fields[0][0] == 0xA0 else 0
        if len(fields) < index + 6:
            return None
        key.open(_SEQUENCE)
        for position, (tag, content) in enumerate(fields):
            role = position - index
            if role == 0:
                key.slot(tag, content)  # serialNumber
            elif role == 3 and tag == _SEQUENCE:  # validity: each time a slot, its type kept
                key.open(tag)
                for time in _tlvs(content):
                    key.slot(*time)
                key.close()
            elif role == 4 and tag == _SEQUENCE:
                _name(key, tag, content)  # subject
            elif role == 5 and tag == _SEQUENCE:  # subjectPublicKeyInfo
                parts = _tlvs(content)
                key.open(tag)
                for part_tag, part in parts:
                    if part_tag == 0x03:
                        key.slot(part_tag, part, keep_length=True)  # the key bits
                    else:
                        key.whole(part_tag, part)
                key.close()
            elif tag == _EXTENSIONS:
                key.open(tag)
                for list_tag, extensions in _tlvs(content):
                    key.open(list_tag)
                    for extension in _tlvs(extensions) if list_tag == _SEQUENCE else []:
                        _extension(key, *extension)
                    key.close()
                key.close()
            else:
                key.whole(tag, content)
        key.close()
        key.whole(*certificate[1])  # the outer signatureAlgorithm; the signature is not read
        return bytes(key.out)
    except NotDER:
        return None


# -- pkilint's validators, split

# pkilint paths of the nodes inside a value slot (a subtree of the node named).
_SLOT_PATHS = (
    "certificate.tbsCertificate.serialNumber",
    "certificate.tbsCertificate.validity.",
    "certificate.tbsCertificate.subjectPublicKeyInfo.subjectPublicKey",
)


def in_slot(path: str) -> bool:
    if path.startswith(_SLOT_PATHS):
        return True
    if path.startswith("certificate.tbsCertificate.subject.rdnSequence."):
        return ".value" in path  # an attribute value, not its type
    if path.startswith("certificate.tbsCertificate.extensions."):
        return ".extnValue.subjectAltName." in path or ".extnValue.subjectKeyIdentifier" in path
    return False


# Validators that read nothing inside a slot, with what they read (pkilint 0.12). Their findings
# are the same for every draft of a shape.
SHAPE_VALIDATORS = {
    # the version, the signature algorithms, the unique IDs
    "CorrectVersionValidator": "version",
    "SignatureAlgorithmMatchValidator": "tbsCertificate.signature vs signatureAlgorithm",
    "SmimeAllowedSignatureAlgorithmEncodingValidator": "tbsCertificate.signature bytes",
    "SmimeAllowedPublicKeyAlgorithmEncodingValidator": "subjectPublicKeyInfo.algorithm bytes",
    "IssuerUniqueIdAbsenceValidator": "issuerUniqueID presence",
    "SubjectUniqueIdAbsenceValidator": "subjectUniqueID presence",
    # names: structure and attribute types, never an attribute value
    "RDNContainsUniqueTypesValidator": "attribute types of each RDN",
    "RelativeDistinguishedNameContainsOneElementValidator": "ATV count of each RDN",
    "EmptyNameValidator": "RDN count of a Name",
    # extensions: OIDs, criticality, and the values of extensions that are not slots
    "UniqueExtensionValidator": "extnIDs",
    "CabfExtensionsPresenceValidator": "extensions presence",
    "BasicConstraintsValidator": "basicConstraints, its criticality",
    "EndEntityValidator": "basicConstraints",
    "SubjectKeyIdentifierPresenceValidator": "SKI presence, basicConstraints",
    "SubjectKeyIdentifierCriticalityValidator": "SKI criticality",
    "KeyUsagePresenceValidator": "keyUsage presence, basicConstraints",
    "KeyUsageCriticalityValidator": "keyUsage criticality",
    "KeyUsageValidator": "keyUsage bits, basicConstraints",
    "CabfSmimeKeyUsagePresenceValidator": "keyUsage presence",
    "CabfSmimeKeyUsageCriticalityValidator": "keyUsage criticality",
    "ExtendedKeyUsagePresenceValidator": "extKeyUsage presence",
    "ExtendedKeyUsageCriticalityValidator": "extKeyUsage OIDs, criticality",
    "AllowedExtendedKeyUsageValidator": "extKeyUsage OIDs",
    "CertificatePolicyQualifierValidator": "certificatePolicies",
    "CertificatePoliciesUserNoticeValidator": "certificatePolicies",
    "DuplicatePolicyValidator": "certificatePolicies",
    "RequiredPolicyIdentifierValidator": "certificatePolicies",
    "CertificatePoliciesPresenceValidator": "certificatePolicies presence",
    "CertificatePoliciesCriticalityValidator": "certificatePolicies criticality",
    "CpsUriHttpValidator": "certificatePolicies CPS URIs",
    "SmimeUserNoticeValidator": "certificatePolicies",
    "CrlDpCriticalityValidator": "cRLDistributionPoints criticality",
    "CabfCrlDpCriticalityValidator": "cRLDistributionPoints criticality",
    "CrlDistributionPointPresenceValidator": "cRLDistributionPoints presence",
    "CrlDpContainsHttpUriValidator": "cRLDistributionPoints URIs",
    "AllowedCrldpFullNameValidator": "cRLDistributionPoints names",
    "DistributionPointValidator": "cRLDistributionPoints",
    "AuthorityKeyIdentifierValidator": "authorityKeyIdentifier",
    "AuthorityKeyIdentifierCriticalityValidator": "authorityKeyIdentifier criticality",
    "CabfAuthorityKeyIdentifierValidator": "authorityKeyIdentifier",
    "AuthorityInformationAccessCriticalityValidator": "authorityInfoAccess criticality",
    "AuthorityInformationAccessPresenceValidator": "authorityInfoAccess presence",
    "AuthorityInformationAccessContainsHttpUriValidator": "authorityInfoAccess URIs",
    "AllowedAiaUriSchemeValidator": "authorityInfoAccess names",
    "GmailAuthorityInfoAccessCaIssuersValidator": "authorityInfoAccess",
    "SubjectInformationAccessCriticalityValidator": "subjectInfoAccess criticality",
    "SubjectAlternativeNamePresenceValidator": "subjectAltName presence",
    "SubjectAlternativeNameCriticalityValidator": "subjectAltName criticality, RDN count",
    "IssuerAlternativeNameCriticalityValidator": "issuerAltName criticality",
    "SubjectDirectoryAttributesCriticalityValidator": "subjectDirectoryAttributes criticality",
    "SubjectDirectoryAttributesPresenceValidator": "subjectDirectoryAttributes presence",
    "SmimeCapabilitiesCriticalityValidator": "smimeCapabilities criticality",
    "NameConstraintsCriticalityValidator": "nameConstraints criticality",
    "NameConstraintsValidator": "nameConstraints, basicConstraints",
    "NameConstraintsGeneralSubtreeValidator": "nameConstraints",
    "CtPrecertPoisonCriticalityValidator": "CT poison criticality",
    "CtPrecertPoisonSctListMutuallyExclusiveExtensionsValidator": "CT extensions presence",
    "SctListElementCountValidator": "SCT list",
    "PolicyConstraintsPresenceValidator": "policyConstraints presence",
    "PolicyMappingsPresenceValidator": "policyMappings presence",
    "InhibitAnyPolicyPresenceValidator": "inhibitAnyPolicy presence",
    "ProhibitedQualifiedStatementValidator": "qcStatements",
    "QCStatementsCriticalityValidator": "qcStatements criticality",
    "LeiCriticalityValidator": "LEI extension criticality",
    "LeiRoleCriticalityValidator": "LEI role extension criticality",
    "LeiPresenceValidator": "LEI extension presence",
    "LeiRolePresenceValidator": "LEI role extension presence",
    "LeiExtensionValueSyntaxValidator": "LEI extension value",
    "AdobeTimestampValidator": "Adobe timestamp extension",
    "AdobeTimestampCriticalityValidator": "Adobe timestamp extension criticality",
    "AdobeTimestampPresenceValidator": "Adobe timestamp extension presence",
    "AdobeArchiveRevInfoCriticalityValidator": "Adobe archive revinfo extension criticality",
    "AdobeArchiveRevInfoPresenceValidator": "Adobe archive revinfo extension presence",
}

# Validators that read only the node they match (and its parents' types): each runs once per
# shape on the nodes outside every slot (the URIs of cRLDistributionPoints and authorityInfoAccess,
# the issuer) and on every draft on the nodes inside a slot.
NODE_LOCAL_VALIDATORS = {
    "GeneralNameValidatorContainer",  # pkix.general_name: each GeneralName's syntax and length
    "UriSyntaxValidator",
    "GeneralNameDnsNameInternalDomainNameValidator",
    "GeneralNameUriInternalDomainNameValidator",
    "GeneralNameRfc822NameInternalDomainNameValidator",
    "SmtpUtf8MailboxInternalDomainNameValidator",
    "GeneralNameInternalIpAddressValidator",
    "UriInternalDomainNameValidator",
    "UtcTimeCorrectSyntaxValidator",
    "GeneralizedTimeCorrectSyntaxValidator",
}


def _restricted(validator: Any, inside: bool) -> Any:
    """``validator`` matching only nodes inside (or only outside) the value slots."""
    restricted = copy.copy(validator)
    own: Callable[[Any], bool] | None = validator._predicate

    def predicate(node: Any) -> bool:
        return in_slot(node.path) is inside and (own is None or own(node))

    restricted._predicate = predicate
    return restricted


@dataclass(frozen=True)
class Split:
    linter: ValidatorContainer  # the whole linter, for the first draft of a shape
    per_draft: ValidatorContainer  # decoders, and every validator not judged once per shape
    shape: frozenset[int]  # id() of the validators judged once per shape
    local: frozenset[int]  # id() of the node-local ones (once per shape outside the slots)

    def keep(self, results: Sequence[Any]) -> list[Any]:
        """The results of the whole linter on a draft that hold for every draft of its shape,
        those with findings only, each holding its node's path instead of the node (a node
        holds its whole document)."""
        return [
            r._replace(node=_Node(str(r.node.path)))
            for r in results
            if r.finding_descriptions
            and (
                id(r.validator) in self.shape
                or (id(r.validator) in self.local and not in_slot(str(r.node.path)))
            )
        ]


@dataclass(frozen=True, slots=True)
class _Node:
    path: str


@functools.cache
def _indexed() -> type:
    """pkilint's ``ValidatorContainer`` with the same walk (every node, depth first; at each
    node every validator whose ``match`` holds, in order), that skips without calling ``match``
    the validators whose node path or ASN.1 class alone rules the node out. Which those are is
    kept per (path, class): later drafts of a shape have the same nodes."""
    from pkilint.document import NodeVisitor
    from pkilint.validation import ValidatorContainer

    class Indexed(ValidatorContainer):  # type: ignore[misc]
        _index: dict[tuple[str, type], list[Any]]

        def _candidates(self, path: str, pdu_class: type) -> list[Any]:
            index = self.__dict__.setdefault("_index", {})
            found = index.get((path, pdu_class))
            if found is None:
                if len(index) > 20_000:  # mutated drafts: bounded
                    index.clear()
                found = [
                    v
                    for v in self.validators
                    if type(v).match is not NodeVisitor.match
                    or (
                        (v._path is None or v._path == path)
                        and (v._pdu_class is None or issubclass(pdu_class, v._pdu_class))
                    )
                ]
                index[(path, pdu_class)] = found
            return found

        def _validate_rec(self, node: Any, results: list[Any]) -> None:
            for v in self._candidates(node.path, type(node.pdu)):
                if v.match(node):
                    result = v.validate_wrapper(node)
                    if isinstance(result, list):
                        results += result
                    else:
                        results.append(result)
            for child in node.children.values():
                self._validate_rec(child, results)

    return Indexed


def split(linter: ValidatorContainer) -> Split:
    """``linter`` with its per-draft part: the same containers, without the validators judged
    once per shape, and the node-local ones restricted to the slots. The first child of pkilint's
    certificate linter is its decoding container (``path "certificate"``): it runs whole."""
    from pkilint.validation import ValidatorContainer

    shape: set[int] = set()
    local: set[int] = set()

    def every(validator: Any) -> list[Any]:
        inner = getattr(validator, "validators", None)
        return [validator, *(w for v in inner or [] for w in every(v))]

    def per_draft(container: Any) -> Any:
        kept = []
        for v in container.validators:
            name = type(v).__name__
            if name in NODE_LOCAL_VALIDATORS:
                local.update(id(w) for w in every(v))
                kept.append(_restricted(v, inside=True))
            elif type(v) is ValidatorContainer:
                kept.append(per_draft(v))
            elif name in SHAPE_VALIDATORS:
                shape.add(id(v))
            else:
                kept.append(v)
        copied = copy.copy(container)
        copied.validators = kept
        if type(container) is ValidatorContainer:
            copied.__class__ = _indexed()
        return copied

    decoding, rest = linter.validators[0], copy.copy(linter)
    rest.validators = linter.validators[1:]
    part = per_draft(rest)
    part.validators = [decoding, *part.validators]
    return Split(linter, part, frozenset(shape), frozenset(local))


class ShapeCache:
    """The kept findings of each shape seen (a bounded LRU: a CA issues few shapes, but a
    mutated draft is a shape of its own)."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._kept: OrderedDict[tuple[str, bytes], Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, linter: str, key: bytes) -> Any:
        with self._lock:
            found = self._kept.get((linter, key))
            if found is None:
                self.misses += 1
                return None
            self.hits += 1
            self._kept.move_to_end((linter, key))
            return found

    def put(self, linter: str, key: bytes, value: Any) -> None:
        with self._lock:
            self._kept[(linter, key)] = value
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)


def lint(parts: Split, root: Any, kept: Sequence[Any] | None) -> tuple[list[Any], list[Any]]:
    """(results, results to keep for the shape): the whole linter's when ``kept`` is None (the
    first draft of a shape), else the per-draft part's plus ``kept``."""
    if kept is None:
        results = list(parts.linter.validate(root))
        return results, parts.keep(results)
    return list(parts.per_draft.validate(root)) + list(kept), list(kept)
