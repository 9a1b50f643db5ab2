"""X-01's DER check (conformance.documents.canonical_der) trusts pyasn1-fasder's strictness for
its fast path: each non-DER form of X.690 §10/§11 must come out as "not DER", each DER form as
itself."""

import pytest
from pyasn1.type import univ
from pyasn1_alt_modules import rfc5280

from jitsuin.conformance.documents import canonical_der


def _ints() -> univ.SetOf:
    return univ.SetOf(componentType=univ.Integer())


NOT_DER = {
    "long-form length": (b"\x04\x81\x01A", univ.OctetString()),
    "BOOLEAN TRUE as 01": (b"\x01\x01\x01", univ.Boolean()),
    "non-minimal INTEGER": (b"\x02\x02\x00\x01", univ.Integer()),
    "indefinite length": (b"\x31\x80\x02\x01\x01\x00\x00", _ints()),
    "constructed OCTET STRING": (b"\x24\x03\x04\x01A", univ.OctetString()),
    "unsorted SET OF": (b"\x31\x06\x02\x01\x02\x02\x01\x01", _ints()),
    "BIT STRING unused bits not zero": (b"\x03\x02\x01\x01", univ.BitString()),
    "DEFAULT critical FALSE encoded": (
        bytes.fromhex("300b0603551d0f0101000401 00".replace(" ", "")),
        rfc5280.Extension(),
    ),
}

DER = {
    "OCTET STRING": (b"\x04\x01A", univ.OctetString()),
    "BOOLEAN TRUE": (b"\x01\x01\xff", univ.Boolean()),
    "sorted SET OF": (b"\x31\x06\x02\x01\x01\x02\x01\x02", _ints()),
    "extension without critical": (bytes.fromhex("30080603551d0f040100"), rfc5280.Extension()),
}


@pytest.mark.parametrize("name", sorted(NOT_DER))
def test_non_der_forms_are_not_der(name):
    der, spec = NOT_DER[name]
    assert canonical_der(der, spec) != der


@pytest.mark.parametrize("name", sorted(DER))
def test_der_forms_are_der(name):
    der, spec = DER[name]
    assert canonical_der(der, spec) == der
