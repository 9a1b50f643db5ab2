// The certs-only CMS SignedData that EST returns (RFC 7030 §4.1.3, §4.2.3; RFC 5652 §5): just the
// certificates, base64 in the body (RFC 8951 §3.2: decode whatever Content-Transfer-Encoding says).

import * as der from "./der.js";

const SIGNED_DATA = "1.2.840.113549.1.7.2";

export function certificatesFromCertsOnly(bytes) {
  const contentInfo = der.decode(bytes).expect(der.TAG.SEQUENCE);
  if (contentInfo.child(0).oid() !== SIGNED_DATA) throw new der.DERError("not a CMS SignedData");
  const signedData = contentInfo.child(1).child(0).expect(der.TAG.SEQUENCE);
  // version, digestAlgorithms, encapContentInfo, [0] IMPLICIT CertificateSet, [1] crls, signerInfos
  const set = signedData.children.find((c) => c.isContext(0));
  if (!set) return [];
  // CertificateChoices: only the plain Certificate (a SEQUENCE); other choices are tagged.
  return set.children.filter((c) => c.tag === der.TAG.SEQUENCE).map((c) => c.der.slice());
}

// An EST response body (base64 text, line breaks allowed) to DER certificates.
export function certificatesFromESTBody(text) {
  return certificatesFromCertsOnly(der.fromBase64(text));
}
