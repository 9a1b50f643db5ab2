// PKCS#12 (RFC 7292) in the page: the private key and the certificates under a passphrase the
// subscriber chooses, so that the key never exists outside the subscriber's device.
//
// What createPFX writes (RFC 9579 §2 and NIST SP 800-132 choices; what OpenSSL 3 writes by default
// apart from the iteration count):
//   - the key: pkcs8ShroudedKeyBag, PBES2 (RFC 8018 §6.2) with PBKDF2-HMAC-SHA256 and AES-256-CBC;
//   - the certificates: certBags inside an EncryptedData under the same scheme (they carry
//     personal data: name and e-mail address);
//   - integrity: the classic PKCS#12 MAC (RFC 7292 §5, Appendix B key derivation) with
//     HMAC-SHA256, readable by every OpenSSL and Windows version that reads AES PKCS#12.
// parsePFX reads those and the other PBES2 variants (for the step 12 check); the legacy
// RC2/3DES schemes have no WebCrypto implementation and are reported as unsupported.

import * as der from "./der.js";
import { sha256Iterated } from "./sha256.js";

const { TAG } = der;

export const ITERATIONS = 600000; // PBKDF2-HMAC-SHA256 (OWASP 2023); the MAC uses the same count

const OID = Object.freeze({
  data: "1.2.840.113549.1.7.1",
  encryptedData: "1.2.840.113549.1.7.6",
  keyBag: "1.2.840.113549.1.12.10.1.1",
  shroudedKeyBag: "1.2.840.113549.1.12.10.1.2",
  certBag: "1.2.840.113549.1.12.10.1.3",
  x509Certificate: "1.2.840.113549.1.9.22.1",
  friendlyName: "1.2.840.113549.1.9.20",
  localKeyId: "1.2.840.113549.1.9.21",
  pbes2: "1.2.840.113549.1.5.13",
  pbkdf2: "1.2.840.113549.1.5.12",
  hmacWithSHA1: "1.2.840.113549.2.7",
  hmacWithSHA256: "1.2.840.113549.2.9",
  hmacWithSHA384: "1.2.840.113549.2.10",
  hmacWithSHA512: "1.2.840.113549.2.11",
  aes128CBC: "2.16.840.1.101.3.4.1.2",
  aes256CBC: "2.16.840.1.101.3.4.1.42",
  sha1: "1.3.14.3.2.26",
  sha256: "2.16.840.1.101.3.4.2.1",
  sha384: "2.16.840.1.101.3.4.2.2",
  sha512: "2.16.840.1.101.3.4.2.3",
  ecPublicKey: "1.2.840.10045.2.1",
  rsaEncryption: "1.2.840.113549.1.1.1",
});

const PRFS = {
  [OID.hmacWithSHA1]: "SHA-1",
  [OID.hmacWithSHA256]: "SHA-256",
  [OID.hmacWithSHA384]: "SHA-384",
  [OID.hmacWithSHA512]: "SHA-512",
};
const CIPHERS = { [OID.aes128CBC]: 128, [OID.aes256CBC]: 256 };
const DIGESTS = {
  [OID.sha1]: "SHA-1",
  [OID.sha256]: "SHA-256",
  [OID.sha384]: "SHA-384",
  [OID.sha512]: "SHA-512",
};
// Output length u and block length v of each hash (RFC 7292 B.2).
const HASH_SIZES = {
  "SHA-1": { u: 20, v: 64 },
  "SHA-256": { u: 32, v: 64 },
  "SHA-384": { u: 48, v: 128 },
  "SHA-512": { u: 64, v: 128 },
};
const MAX_ITERATIONS = 10_000_000;

export class PFXError extends Error {
  // code: "malformed", "wrong-password" or "unsupported"
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const utf8 = (text) => new TextEncoder().encode(text);
const random = (n) => crypto.getRandomValues(new Uint8Array(n));

// -- key derivation ---------------------------------------------------------------------------------
async function iteratedHash(hash, message, count) {
  if (hash === "SHA-256") return sha256Iterated(message, count);
  let digest = message;
  for (let i = 0; i < count; i++) digest = new Uint8Array(await crypto.subtle.digest(hash, digest));
  return digest;
}

// The password as a BMPString with its two-byte terminator (RFC 7292 B.1).
export function bmpPassword(password) {
  return der.concat(der.bmpBytes(password), [0, 0]);
}

// RFC 7292 Appendix B.2: ID 1 = key, 2 = IV, 3 = MAC key.
export async function pkcs12KDF(hash, id, password, salt, iterations, length) {
  const { u, v } = HASH_SIZES[hash];
  const stretch = (bytes) => {
    const out = new Uint8Array(bytes.length ? v * Math.ceil(bytes.length / v) : 0);
    for (let i = 0; i < out.length; i++) out[i] = bytes[i % bytes.length];
    return out;
  };
  const D = new Uint8Array(v).fill(id);
  const I = der.concat(stretch(salt), stretch(password));
  const blocks = Math.ceil(length / u);
  const out = new Uint8Array(blocks * u);
  for (let i = 0; i < blocks; i++) {
    const A = await iteratedHash(hash, der.concat(D, I), iterations);
    out.set(A, i * u);
    if (i + 1 === blocks) break;
    const B = Uint8Array.from({ length: v }, (_, k) => A[k % u]);
    for (let j = 0; j < I.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = I[j + k] + B[k] + carry;
        I[j + k] = sum & 0xff;
        carry = sum >> 8;
      }
    }
  }
  return out.subarray(0, length);
}

async function hmac(hash, key, data) {
  const imported = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", imported, data));
}

async function pbkdf2Key(password, salt, iterations, prf, bits, usage) {
  const base = await crypto.subtle.importKey("raw", utf8(password), "PBKDF2", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "PBKDF2", hash: prf, salt, iterations },
    base,
    { name: "AES-CBC", length: bits },
    false,
    [usage],
  );
}

// -- PBES2 ------------------------------------------------------------------------------------------
async function pbes2Encrypt(password, plaintext, iterations) {
  const salt = random(16);
  const iv = random(16);
  const key = await pbkdf2Key(password, salt, iterations, "SHA-256", 256, "encrypt");
  const ciphertext = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-CBC", iv }, key, plaintext));
  const algorithm = der.sequence(
    der.oid(OID.pbes2),
    der.sequence(
      der.sequence(
        der.oid(OID.pbkdf2),
        der.sequence(
          der.octetString(salt),
          der.integer(iterations),
          der.sequence(der.oid(OID.hmacWithSHA256), der.nullValue()),
        ),
      ),
      der.sequence(der.oid(OID.aes256CBC), der.octetString(iv)),
    ),
  );
  return { algorithm, ciphertext };
}

async function pbes2Decrypt(password, algorithmNode, ciphertext) {
  const { oid, parameters } = der.algorithm(algorithmNode);
  if (oid !== OID.pbes2) {
    throw new PFXError("unsupported", `legacy encryption ${oid}: browsers cannot decrypt it`);
  }
  const [kdf, scheme] = parameters.children.map(der.algorithm);
  if (kdf.oid !== OID.pbkdf2) throw new PFXError("unsupported", `unsupported key derivation ${kdf.oid}`);
  const params = kdf.parameters.children;
  const salt = params[0].expect(TAG.OCTET_STRING).content;
  const iterations = params[1].number();
  const prfNode = params.slice(2).find((n) => n.tag === TAG.SEQUENCE);
  const prf = prfNode ? PRFS[der.algorithm(prfNode).oid] : "SHA-1";
  const bits = CIPHERS[scheme.oid];
  if (!prf || !bits) throw new PFXError("unsupported", "unsupported PBES2 hash or cipher");
  if (iterations < 1 || iterations > MAX_ITERATIONS) throw new PFXError("malformed", "bad iteration count");
  const iv = scheme.parameters.expect(TAG.OCTET_STRING).content;
  const key = await pbkdf2Key(password, salt, iterations, prf, bits, "decrypt");
  try {
    return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-CBC", iv }, key, ciphertext));
  } catch {
    throw new PFXError("wrong-password", "the passphrase does not decrypt the file");
  }
}

// -- building -----------------------------------------------------------------------------------------
function attribute(oid, value) {
  return der.sequence(der.oid(oid), der.setOf(value));
}

function contentInfo(type, content) {
  return der.sequence(der.oid(type), der.explicit(0, content));
}

function certBag(certificate, attributes) {
  const bag = der.sequence(der.oid(OID.x509Certificate), der.explicit(0, der.octetString(certificate)));
  const parts = [der.oid(OID.certBag), der.explicit(0, bag)];
  if (attributes.length) parts.push(der.setOf(...attributes));
  return der.sequence(...parts);
}

// A PFX holding ``privateKey`` (an extractable WebCrypto key) and ``certificate`` (DER), with
// ``chain`` (DER CA certificates) after it, under ``password``.
export async function createPFX({
  privateKey,
  certificate,
  chain = [],
  friendlyName,
  password,
  iterations = ITERATIONS,
}) {
  if (!password) throw new PFXError("malformed", "a passphrase is required");
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", privateKey));
  const localKeyId = new Uint8Array(await crypto.subtle.digest("SHA-1", certificate));
  const attributes = [attribute(OID.localKeyId, der.octetString(localKeyId))];
  if (friendlyName) attributes.push(attribute(OID.friendlyName, der.bmpString(friendlyName)));

  const shrouded = await pbes2Encrypt(password, pkcs8, iterations);
  pkcs8.fill(0);
  const keyBag = der.sequence(
    der.oid(OID.shroudedKeyBag),
    der.explicit(0, der.sequence(shrouded.algorithm, der.octetString(shrouded.ciphertext))),
    der.setOf(...attributes),
  );
  const keyContents = contentInfo(OID.data, der.octetString(der.sequence(keyBag)));

  const certificates = der.sequence(certBag(certificate, attributes), ...chain.map((c) => certBag(c, [])));
  const sealed = await pbes2Encrypt(password, certificates, iterations);
  const encryptedData = der.sequence(
    der.integer(0),
    der.sequence(der.oid(OID.data), sealed.algorithm, der.implicit(0, sealed.ciphertext, false)),
  );
  const certContents = contentInfo(OID.encryptedData, encryptedData);

  const authenticatedSafe = der.sequence(certContents, keyContents);
  const macSalt = random(16);
  const macKey = await pkcs12KDF("SHA-256", 3, bmpPassword(password), macSalt, iterations, 32);
  const mac = await hmac("SHA-256", macKey, authenticatedSafe);
  return der.sequence(
    der.integer(3),
    contentInfo(OID.data, der.octetString(authenticatedSafe)),
    der.sequence(
      der.sequence(der.sequence(der.oid(OID.sha256), der.nullValue()), der.octetString(mac)),
      der.octetString(macSalt),
      der.integer(iterations),
    ),
  );
}

// -- reading ------------------------------------------------------------------------------------------
function readAttributes(node) {
  const out = {};
  if (!node) return out;
  for (const attr of node.children) {
    const type = attr.child(0).oid();
    const value = attr.child(1).children[0];
    if (!value) continue;
    if (type === OID.localKeyId) out.localKeyId = der.hex(value.octets());
    if (type === OID.friendlyName) out.friendlyName = value.string();
  }
  return out;
}

async function readSafeContents(bytes, password, out) {
  for (const bag of der.decode(bytes).expect(TAG.SEQUENCE).children) {
    const type = bag.child(0).oid();
    const value = bag.child(1).child(0);
    const attributes = readAttributes(bag.children[2]);
    if (type === OID.certBag) {
      if (value.child(0).oid() === OID.x509Certificate) {
        out.certificates.push({ der: value.child(1).child(0).octets().slice(), ...attributes });
      }
    } else if (type === OID.shroudedKeyBag) {
      const pkcs8 = await pbes2Decrypt(password, value.child(0), value.child(1).octets());
      out.keys.push({ pkcs8, ...attributes });
    } else if (type === OID.keyBag) {
      out.keys.push({ pkcs8: value.der.slice(), ...attributes });
    }
  }
}

async function verifyMac(macData, authenticatedSafe, password) {
  const digestInfo = macData.child(0);
  const { oid } = der.algorithm(digestInfo.child(0));
  const hash = DIGESTS[oid];
  if (!hash) return "unsupported"; // e.g. PBMAC1 (RFC 9579): decryption still checks the passphrase
  const expected = digestInfo.child(1).octets();
  const salt = macData.child(1).octets();
  const iterations = macData.children[2] ? macData.child(2).number() : 1;
  if (iterations < 1 || iterations > MAX_ITERATIONS) {
    throw new PFXError("malformed", "bad MAC iteration count");
  }
  const key = await pkcs12KDF(hash, 3, bmpPassword(password), salt, iterations, HASH_SIZES[hash].u);
  const actual = await hmac(hash, key, authenticatedSafe);
  if (!der.equal(actual, expected)) {
    throw new PFXError("wrong-password", "the passphrase does not match the file (MAC check failed)");
  }
  return "verified";
}

// Everything in a PFX: { certificates: [{der, localKeyId, friendlyName}], keys: [{pkcs8, ...}],
// mac: "verified" | "absent" | "unsupported" }.
export async function parsePFX(bytes, password) {
  let pfx;
  try {
    pfx = der.decode(bytes).expect(TAG.SEQUENCE);
    if (pfx.child(0).number() !== 3) throw new der.DERError("not PFX version 3");
  } catch (error) {
    throw new PFXError("malformed", `not a PKCS#12 file: ${error.message}`);
  }
  try {
    const authSafe = pfx.child(1);
    if (authSafe.child(0).oid() !== OID.data) {
      throw new PFXError("unsupported", "public-key integrity mode is not supported");
    }
    const authenticatedSafe = authSafe.child(1).child(0).octets();
    const mac = pfx.children[2] ? await verifyMac(pfx.child(2), authenticatedSafe, password) : "absent";
    const out = { certificates: [], keys: [], mac };
    for (const info of der.decode(authenticatedSafe).children) {
      const type = info.child(0).oid();
      const content = info.child(1).child(0);
      if (type === OID.data) {
        await readSafeContents(content.octets(), password, out);
      } else if (type === OID.encryptedData) {
        const encrypted = content.child(1);
        const ciphertext = encrypted.children.find((c) => c.isContext(0));
        if (!ciphertext) continue;
        const plaintext = await pbes2Decrypt(password, encrypted.child(1), ciphertext.octets());
        await readSafeContents(plaintext, password, out);
      } else {
        throw new PFXError("unsupported", `unsupported content type ${type}`);
      }
    }
    return out;
  } catch (error) {
    if (error instanceof PFXError) throw error;
    throw new PFXError("malformed", `the PKCS#12 file cannot be read: ${error.message}`);
  }
}

// Does the PKCS#8 private key belong to the certificate's public key? A signature made with the
// one must verify with the other; nothing leaves the page.
export async function keyMatches(pkcs8, certificate) {
  const info = der.decode(pkcs8);
  const { oid, parameters } = der.algorithm(info.child(1));
  let signParams;
  let importParams;
  if (oid === OID.ecPublicKey) {
    const curve = { "1.2.840.10045.3.1.7": "P-256", "1.3.132.0.34": "P-384", "1.3.132.0.35": "P-521" }[
      parameters?.oid()
    ];
    if (!curve) return false;
    importParams = { name: "ECDSA", namedCurve: curve };
    signParams = { name: "ECDSA", hash: "SHA-256" };
  } else if (oid === OID.rsaEncryption) {
    importParams = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
    signParams = { name: "RSASSA-PKCS1-v1_5" };
  } else {
    return false;
  }
  if (certificate.keyAlgorithm !== oid) return false;
  try {
    const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, importParams, false, ["sign"]);
    const publicKey = await crypto.subtle.importKey(
      "spki", certificate.spki, importParams, false, ["verify"]);
    const challenge = random(32);
    const signature = await crypto.subtle.sign(signParams, privateKey, challenge);
    return await crypto.subtle.verify(signParams, publicKey, signature, challenge);
  } catch {
    return false;
  }
}
