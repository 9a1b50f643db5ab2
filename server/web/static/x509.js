// X.509 certificates (RFC 5280): the fields a subscriber needs to see, and signature checks with
// WebCrypto, for the step 12 check page.

import * as der from "./der.js";

const { TAG } = der;

export const OID = Object.freeze({
  ecPublicKey: "1.2.840.10045.2.1",
  rsaEncryption: "1.2.840.113549.1.1.1",
  P256: "1.2.840.10045.3.1.7",
  P384: "1.3.132.0.34",
  P521: "1.3.132.0.35",
  ecdsaSHA256: "1.2.840.10045.4.3.2",
  ecdsaSHA384: "1.2.840.10045.4.3.3",
  ecdsaSHA512: "1.2.840.10045.4.3.4",
  rsaSHA256: "1.2.840.113549.1.1.11",
  rsaSHA384: "1.2.840.113549.1.1.12",
  rsaSHA512: "1.2.840.113549.1.1.13",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  certificatePolicies: "2.5.29.32",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  emailProtection: "1.3.6.1.5.5.7.3.4",
  clientAuth: "1.3.6.1.5.5.7.3.2",
});

const CURVES = {
  [OID.P256]: { name: "P-256", size: 32 },
  [OID.P384]: { name: "P-384", size: 48 },
  [OID.P521]: { name: "P-521", size: 66 },
};

const SIGNATURES = {
  [OID.ecdsaSHA256]: { family: "ECDSA", hash: "SHA-256" },
  [OID.ecdsaSHA384]: { family: "ECDSA", hash: "SHA-384" },
  [OID.ecdsaSHA512]: { family: "ECDSA", hash: "SHA-512" },
  [OID.rsaSHA256]: { family: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
  [OID.rsaSHA384]: { family: "RSASSA-PKCS1-v1_5", hash: "SHA-384" },
  [OID.rsaSHA512]: { family: "RSASSA-PKCS1-v1_5", hash: "SHA-512" },
};

const NAMES = {
  "2.5.4.3": "CN",
  "2.5.4.4": "SN",
  "2.5.4.5": "serialNumber",
  "2.5.4.6": "C",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "2.5.4.12": "title",
  "2.5.4.42": "GN",
  "2.5.4.97": "organizationIdentifier",
  "1.2.840.113549.1.9.1": "E",
};

export class CertificateError extends Error {}

// A Name (RFC 5280 §4.1.2.4): its DER, its attributes in order, and an RFC 4514-like text.
function parseName(node) {
  node.expect(TAG.SEQUENCE);
  const attributes = [];
  for (const rdn of node.children) {
    for (const atv of rdn.children) {
      const type = atv.child(0).oid();
      attributes.push({ type, name: NAMES[type] ?? type, value: atv.child(1).string() });
    }
  }
  const text = attributes
    .slice()
    .reverse()
    .map((a) => `${a.name}=${a.value}`)
    .join(", ");
  return { der: node.der, attributes, text };
}

function parseExtensions(node) {
  const extensions = new Map();
  for (const ext of node.child(0, TAG.SEQUENCE).children) {
    const children = ext.children;
    const critical = children.length === 3 && children[1].boolean();
    extensions.set(children[0].oid(), {
      critical,
      value: children[children.length - 1].expect(TAG.OCTET_STRING).content,
    });
  }
  return extensions;
}

export function parseCertificate(bytes) {
  let root;
  try {
    root = der.decode(bytes).expect(TAG.SEQUENCE);
  } catch (error) {
    throw new CertificateError(`not a DER certificate: ${error.message}`);
  }
  try {
    const [tbs, signatureAlgorithm, signature] = root.children;
    const fields = tbs.expect(TAG.SEQUENCE).children;
    let i = 0;
    let version = 1;
    if (fields[0].isContext(0)) {
      version = fields[0].child(0).number() + 1;
      i = 1;
    }
    const serial = fields[i].unsigned();
    const issuer = parseName(fields[i + 2]);
    const [notBefore, notAfter] = fields[i + 3].children.map((t) => t.date());
    const subject = parseName(fields[i + 4]);
    const spkiNode = fields[i + 5].expect(TAG.SEQUENCE);
    const keyAlgorithm = der.algorithm(spkiNode.child(0));
    let extensions = new Map();
    for (const extra of fields.slice(i + 6)) if (extra.isContext(3)) extensions = parseExtensions(extra);
    const cert = {
      der: root.der,
      tbs: tbs.der,
      signatureAlgorithm: der.algorithm(signatureAlgorithm).oid,
      signature: signature.bits(),
      version,
      serial: der.hex(serial),
      issuer,
      subject,
      notBefore,
      notAfter,
      spki: spkiNode.der,
      keyAlgorithm: keyAlgorithm.oid,
      curve:
        keyAlgorithm.oid === OID.ecPublicKey && keyAlgorithm.parameters
          ? keyAlgorithm.parameters.oid()
          : null,
      extensions,
    };
    return Object.assign(cert, readExtensions(extensions));
  } catch (error) {
    if (error instanceof CertificateError) throw error;
    throw new CertificateError(`the certificate cannot be read: ${error.message}`);
  }
}

function readExtensions(extensions) {
  const value = (oid) => (extensions.has(oid) ? der.decode(extensions.get(oid).value) : null);
  const out = { ski: null, aki: null, ca: false, eku: [], policies: [], emails: [] };
  const ski = value(OID.subjectKeyIdentifier);
  if (ski) out.ski = ski.expect(TAG.OCTET_STRING).content;
  const aki = value(OID.authorityKeyIdentifier);
  if (aki) out.aki = aki.children.find((c) => c.isContext(0))?.content ?? null;
  const basic = value(OID.basicConstraints);
  if (basic) {
    const first = basic.children[0];
    out.ca = first !== undefined && first.tag === TAG.BOOLEAN && first.boolean();
  }
  const eku = value(OID.extKeyUsage);
  if (eku) out.eku = eku.children.map((c) => c.oid());
  const policies = value(OID.certificatePolicies);
  if (policies) out.policies = policies.children.map((p) => p.child(0).oid());
  const san = value(OID.subjectAltName);
  if (san) {
    out.emails = san.children
      .filter((c) => c.tag === 0x81) // rfc822Name [1] IMPLICIT IA5String
      .map((c) => String.fromCharCode(...c.content));
  }
  return out;
}

export async function sha256Fingerprint(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return der.hex(digest, ":");
}

// ECDSA-Sig-Value (RFC 3279 §2.2.3) to the fixed-size r||s that WebCrypto takes.
export function ecdsaSignatureToRaw(signature, size) {
  const [r, s] = der.decode(signature).children.map((n) => n.unsigned());
  if (r.length > size || s.length > size) throw new CertificateError("ECDSA signature too long");
  const raw = new Uint8Array(2 * size);
  raw.set(r, size - r.length);
  raw.set(s, 2 * size - s.length);
  return raw;
}

// The public key of ``spki`` (DER SubjectPublicKeyInfo) for verifying with ``algorithm``.
export async function importVerifyKey(spki, keyAlgorithm, curve, signatureOid) {
  const scheme = SIGNATURES[signatureOid];
  if (!scheme) throw new CertificateError(`unsupported signature algorithm ${signatureOid}`);
  if (scheme.family === "ECDSA") {
    if (keyAlgorithm !== OID.ecPublicKey || !CURVES[curve]) {
      throw new CertificateError("the issuer key does not fit the signature algorithm");
    }
    const params = { name: "ECDSA", namedCurve: CURVES[curve].name };
    return crypto.subtle.importKey("spki", spki, params, false, ["verify"]);
  }
  if (keyAlgorithm !== OID.rsaEncryption) {
    throw new CertificateError("the issuer key does not fit the signature algorithm");
  }
  const params = { name: "RSASSA-PKCS1-v1_5", hash: scheme.hash };
  return crypto.subtle.importKey("spki", spki, params, false, ["verify"]);
}

// Does ``issuer``'s key verify ``cert``'s signature? (RFC 5280 §6.1.3 (a)(1))
export async function signedBy(cert, issuer) {
  const scheme = SIGNATURES[cert.signatureAlgorithm];
  if (!scheme) throw new CertificateError(`unsupported signature algorithm ${cert.signatureAlgorithm}`);
  const key = await importVerifyKey(
    issuer.spki, issuer.keyAlgorithm, issuer.curve, cert.signatureAlgorithm);
  if (scheme.family === "ECDSA") {
    let raw;
    try {
      raw = ecdsaSignatureToRaw(cert.signature, CURVES[issuer.curve].size);
    } catch {
      return false;
    }
    return crypto.subtle.verify({ name: "ECDSA", hash: scheme.hash }, key, raw, cert.tbs);
  }
  return crypto.subtle.verify({ name: "RSASSA-PKCS1-v1_5" }, key, cert.signature, cert.tbs);
}

// Certificates from a file: DER, or PEM with one or more CERTIFICATE blocks.
export function certificatesFromFile(bytes) {
  const text = new TextDecoder("latin1").decode(bytes);
  if (text.includes("-----BEGIN")) return der.fromPEM(text, "CERTIFICATE");
  return [bytes];
}
