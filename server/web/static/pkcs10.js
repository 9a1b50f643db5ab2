// The key pair and the PKCS#10 certification request (RFC 2986), made in the page with WebCrypto.
// The private key is extractable only so that the page can put it into the PKCS#12 file; it is
// never sent anywhere. The request carries an empty subject: the CA takes every subject field
// from the vetted record, and the request contributes only the public key and the proof of
// possession (docs/flow.md, RFC 7030 §4.2.1).

import * as der from "./der.js";

const EC_SHA256 = "1.2.840.10045.4.3.2"; // ecdsa-with-SHA256 (RFC 5758 §3.2)
const EC_SHA384 = "1.2.840.10045.4.3.3";
const RSA_SHA256 = "1.2.840.113549.1.1.11"; // sha256WithRSAEncryption (RFC 4055 §5)
const F4 = new Uint8Array([1, 0, 1]);

export const KEY_TYPES = Object.freeze({
  "ecdsa-p256": {
    generate: { name: "ECDSA", namedCurve: "P-256" },
    sign: { name: "ECDSA", hash: "SHA-256" },
    // RFC 5758 §3.2: the parameters field is absent.
    signatureAlgorithm: () => der.sequence(der.oid(EC_SHA256)),
    ecSize: 32,
  },
  "ecdsa-p384": {
    generate: { name: "ECDSA", namedCurve: "P-384" },
    sign: { name: "ECDSA", hash: "SHA-384" },
    signatureAlgorithm: () => der.sequence(der.oid(EC_SHA384)),
    ecSize: 48,
  },
  "rsa-2048": {
    generate: { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: F4, hash: "SHA-256" },
    sign: { name: "RSASSA-PKCS1-v1_5" },
    // RFC 4055 §5: NULL parameters.
    signatureAlgorithm: () => der.sequence(der.oid(RSA_SHA256), der.nullValue()),
  },
  "rsa-3072": {
    generate: { name: "RSASSA-PKCS1-v1_5", modulusLength: 3072, publicExponent: F4, hash: "SHA-256" },
    sign: { name: "RSASSA-PKCS1-v1_5" },
    signatureAlgorithm: () => der.sequence(der.oid(RSA_SHA256), der.nullValue()),
  },
});

function keyType(name) {
  const type = KEY_TYPES[name];
  if (!type) throw new Error(`unknown key type ${name}`);
  return type;
}

export function generateKeyPair(name) {
  return crypto.subtle.generateKey(keyType(name).generate, true, ["sign", "verify"]);
}

// WebCrypto's fixed-size r||s to the ECDSA-Sig-Value X.509 uses (RFC 3279 §2.2.3).
export function ecdsaRawToDer(raw) {
  const half = raw.length / 2;
  return der.sequence(der.integer(raw.subarray(0, half)), der.integer(raw.subarray(half)));
}

async function sign(name, privateKey, data) {
  const type = keyType(name);
  const signature = new Uint8Array(await crypto.subtle.sign(type.sign, privateKey, data));
  return type.ecSize ? ecdsaRawToDer(signature) : signature;
}

// A DER PKCS#10 request for ``keyPair`` (made with ``generateKeyPair(name)``).
export async function createCSR(keyPair, name) {
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keyPair.publicKey));
  const info = der.sequence(
    der.integer(0), // version v1 (RFC 2986 §4.1)
    der.sequence(), // subject: empty, filled in by the CA from the vetted record
    spki,
    der.implicit(0, new Uint8Array(0), true), // attributes [0] IMPLICIT SET OF: none
  );
  const signature = await sign(name, keyPair.privateKey, info);
  return der.sequence(info, keyType(name).signatureAlgorithm(), der.bitString(signature));
}
