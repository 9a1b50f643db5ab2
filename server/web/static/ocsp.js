// OCSP (RFC 6960) for the step 12 check: is the certificate revoked? One request to this
// origin's responder (POST /ocsp, RFC 6960 App. A.1), for one CertID hashed with SHA-256 and a
// nonce (RFC 8954); the answer is believed only if the issuing CA's own key signed it (the
// responder signs with the generation's key, RFC 6960 §4.2.2.2: no delegated responder is
// accepted), it answers this CertID and echoes the nonce, and it is current. What is sent is the
// CertID (hashes of the CA's name and key, and the serial number): not the certificate.

import * as der from "./der.js";
import { signedBy } from "./x509.js";

const { TAG } = der;
const SHA256 = "2.16.840.1.101.3.4.2.1";
const BASIC = "1.3.6.1.5.5.7.48.1.1";
const NONCE = "1.3.6.1.5.5.7.48.1.2";
const ENUMERATED = 0x0a;
// RFC 5280 §5.3.1 CRLReason (7 is unused).
const REASONS = [
  "unspecified",
  "keyCompromise",
  "cACompromise",
  "affiliationChanged",
  "superseded",
  "cessationOfOperation",
  "certificateHold",
  null,
  "removeFromCRL",
  "privilegeWithdrawn",
  "aACompromise",
];
// Clocks differ: thisUpdate may lie this far ahead of the page's clock, nextUpdate this far behind.
const SKEW_MS = 5 * 60 * 1000;

export class OCSPError extends Error {}

const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));

// CertID (RFC 6960 §4.1.1): the issuer's name and key hashes and the serial number.
export async function certID(leaf, issuer) {
  // issuerKeyHash: over the subjectPublicKey BIT STRING's value, without the unused-bits octet.
  const issuerKey = der.decode(issuer.spki).child(1).bits();
  return {
    nameHash: await sha256(issuer.subject.der),
    keyHash: await sha256(issuerKey),
    serial: der.fromHex(leaf.serial), // unsigned, without leading zeros (x509.js)
  };
}

export function buildRequest(id, nonce) {
  const reqCert = der.sequence(
    der.sequence(der.oid(SHA256), der.nullValue()),
    der.octetString(id.nameHash),
    der.octetString(id.keyHash),
    der.integer(id.serial),
  );
  const extensions = der.explicit(
    2,
    der.sequence(der.sequence(der.oid(NONCE), der.octetString(der.octetString(nonce)))),
  );
  return der.sequence(der.sequence(der.sequence(der.sequence(reqCert)), extensions));
}

function extensionValue(node, oid) {
  for (const ext of node.child(0, TAG.SEQUENCE).children) {
    if (ext.child(0).oid() === oid) return ext.children[ext.children.length - 1].content;
  }
  return null;
}

// The status the response gives for ``id``: { status: "good" | "revoked" | "unknown",
// revokedAt, reason, thisUpdate }. Anything else throws OCSPError with what was wrong.
export async function readResponse(bytes, id, nonce, issuer, now = new Date()) {
  let basic;
  try {
    const root = der.decode(bytes).expect(TAG.SEQUENCE);
    const status = root.child(0, ENUMERATED).content[0];
    if (status !== 0) throw new OCSPError(`the responder answered status ${status}`);
    const responseBytes = root.child(1).child(0, TAG.SEQUENCE);
    if (responseBytes.child(0).oid() !== BASIC) throw new OCSPError("not a basic OCSP response");
    basic = der.decode(responseBytes.child(1, TAG.OCTET_STRING).content).expect(TAG.SEQUENCE);
  } catch (error) {
    if (error instanceof OCSPError) throw error;
    throw new OCSPError(`the response cannot be read: ${error.message}`);
  }
  const [tbs, signatureAlgorithm, signature] = basic.children;
  const signed = {
    tbs: tbs.der,
    signatureAlgorithm: der.algorithm(signatureAlgorithm).oid,
    signature: signature.bits(),
  };
  if (!(await signedBy(signed, issuer))) {
    throw new OCSPError("the response is not signed by the issuing CA");
  }
  const fields = tbs.children;
  const i = fields[0].isContext(0) ? 1 : 0; // version [0], then responderID [1] or [2]
  const responses = fields[i + 2].expect(TAG.SEQUENCE).children;
  const extensions = fields.slice(i + 3).find((f) => f.isContext(1));
  const echoed = extensions ? extensionValue(extensions, NONCE) : null;
  if (!echoed || !der.equal(der.decode(echoed).expect(TAG.OCTET_STRING).content, nonce)) {
    throw new OCSPError("the response does not answer this request (nonce)");
  }
  for (const single of responses) {
    const [cert, certStatus, thisUpdateNode, ...rest] = single.children;
    const [algorithm, nameHash, keyHash, serial] = cert.children;
    const same =
      der.algorithm(algorithm).oid === SHA256 &&
      der.equal(nameHash.content, id.nameHash) &&
      der.equal(keyHash.content, id.keyHash) &&
      der.equal(serial.unsigned(), id.serial);
    if (!same) continue;
    const thisUpdate = thisUpdateNode.date();
    const nextNode = rest.find((f) => f.isContext(0));
    const nextUpdate = nextNode ? nextNode.child(0).date() : null;
    if (thisUpdate.getTime() > now.getTime() + SKEW_MS) {
      throw new OCSPError("the response is not valid yet (check this computer's clock)");
    }
    if (nextUpdate && nextUpdate.getTime() < now.getTime() - SKEW_MS) {
      throw new OCSPError("the response is out of date (check this computer's clock)");
    }
    if (certStatus.tag === 0x80) return { status: "good", thisUpdate };
    if (certStatus.tag === 0x82) return { status: "unknown", thisUpdate };
    if (certStatus.tag === 0xa1) {
      const info = certStatus.children;
      const reasonNode = info.find((f) => f.isContext(0));
      const code = reasonNode ? reasonNode.child(0, ENUMERATED).content[0] : 0;
      return {
        status: "revoked",
        revokedAt: info[0].date(),
        reason: REASONS[code] ?? "unspecified",
        thisUpdate,
      };
    }
    throw new OCSPError("the response has an unknown certificate status");
  }
  throw new OCSPError("the response does not answer for this certificate");
}

// Ask ``url`` (this origin's responder) about ``leaf``, issued by ``issuer`` (parsed certificates).
export async function revocationStatus(url, leaf, issuer) {
  const id = await certID(leaf, issuer);
  const nonce = crypto.getRandomValues(new Uint8Array(16));
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/ocsp-request", Accept: "application/ocsp-response" },
      body: buildRequest(id, nonce),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (error) {
    throw new OCSPError(`the responder cannot be reached: ${error.message}`);
  }
  if (!response.ok) throw new OCSPError(`the responder answered HTTP ${response.status}`);
  return readResponse(new Uint8Array(await response.arrayBuffer()), id, nonce, issuer);
}
