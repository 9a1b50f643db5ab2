// Seed step 12 (SEED-R20): does the subscriber's certificate chain to the published CA
// certificates, which profile is it, when does it expire, and (for a .p12) does the private key
// belong to it, and is it revoked. Everything runs in the page with WebCrypto: neither the file,
// nor the key, nor the passphrase leaves the browser. The CA certificates come with the page
// (server-rendered); the revocation status of a certificate this CA issued comes from this
// origin's OCSP responder (ocsp.js), asked with the serial number only.

import * as der from "./der.js";
import { OCSPError, revocationStatus } from "./ocsp.js";
import { PFXError, keyMatches, parsePFX } from "./pkcs12.js";
import {
  clearFieldErrors,
  clearMessages,
  describe,
  formatDate,
  formatDay,
  pageData,
  reportFieldErrors,
  reveal,
  setBusy,
  showError,
  showProgress,
  t,
} from "./ui.js";
import {
  CertificateError,
  OID,
  certificatesFromFile,
  parseCertificate,
  sha256Fingerprint,
  signedBy,
} from "./x509.js";

const $ = (id) => document.getElementById(id);
const form = $("check-form");
const fileInput = $("file");
const passphraseField = $("p12-passphrase-field");
const passphraseInput = $("p12-passphrase");
const result = $("result");

const published = pageData.caCertificates.map((entry) => ({
  generation: entry.generation,
  certificate: parseCertificate(der.fromHex(entry.der)),
}));

function kind() {
  return form.elements.kind.value;
}

function showKind() {
  passphraseField.hidden = kind() !== "p12";
}
for (const radio of form.elements.kind) radio.addEventListener("change", showKind);
fileInput.addEventListener("change", () => {
  // A .p12/.pfx chosen while "certificate" is selected: switch to the PKCS#12 choice.
  if (/\.(p12|pfx)$/i.test(fileInput.files[0]?.name ?? "")) {
    form.elements.kind.value = "p12";
    showKind();
  }
});
showKind();

async function readP12(bytes, password) {
  let contents;
  try {
    contents = await parsePFX(bytes, password);
  } catch (error) {
    const code = error instanceof PFXError ? error.code : "";
    if (code === "wrong-password") throw new UserError(t("p12_wrong_passphrase"));
    if (code === "unsupported") throw new UserError(t("p12_unsupported"));
    throw new UserError(t("bad_file"));
  }
  if (!contents.certificates.length) throw new UserError(t("p12_no_certificate"));
  const key = contents.keys[0] ?? null;
  const certificates = contents.certificates.map((c) => ({ ...c, parsed: parseCertificate(c.der) }));
  const leaf =
    certificates.find((c) => key && c.localKeyId && c.localKeyId === key.localKeyId) ??
    certificates.find((c) => !c.parsed.ca) ??
    certificates[0];
  return { leaf: leaf.parsed, key };
}

class UserError extends Error {}

function readCertificateFile(bytes) {
  let certificates;
  try {
    certificates = certificatesFromFile(bytes).map(parseCertificate);
  } catch (error) {
    throw new UserError(t("bad_file"));
  }
  if (!certificates.length) throw new UserError(t("bad_file"));
  return { leaf: certificates.find((c) => !c.ca) ?? certificates[0], key: null };
}

// RFC 5280 §6.1.3 for a path of one: the issuer named by the certificate, with the key its
// authority key identifier names, whose signature verifies, all valid now.
async function evaluate(leaf) {
  const now = new Date();
  const reasons = [];
  const candidates = published.filter(
    ({ certificate: ca }) =>
      der.equal(ca.subject.der, leaf.issuer.der) && (!leaf.aki || (ca.ski && der.equal(ca.ski, leaf.aki))),
  );
  let issuer = null;
  if (!candidates.length) {
    reasons.push(t("reason_other_issuer", { issuer: leaf.issuer.text }));
  }
  for (const candidate of candidates) {
    try {
      if (await signedBy(leaf, candidate.certificate)) {
        issuer = candidate;
        break;
      }
    } catch (error) {
      if (!(error instanceof CertificateError)) throw error;
      reasons.push(t("reason_unsupported", { what: leaf.signatureAlgorithm }));
    }
  }
  if (candidates.length && !issuer && !reasons.length) reasons.push(t("reason_bad_signature"));
  if (now < leaf.notBefore) reasons.push(t("reason_not_yet_valid", { when: formatDate(leaf.notBefore) }));
  if (now > leaf.notAfter) reasons.push(t("reason_expired", { when: formatDate(leaf.notAfter) }));
  if (issuer) {
    const ca = issuer.certificate;
    if (now < ca.notBefore || now > ca.notAfter) reasons.push(t("reason_ca_expired"));
  }
  if (!leaf.eku.includes(OID.emailProtection)) reasons.push(t("reason_not_email"));
  // RFC 5280 §6.1.3 (a)(3): not revoked. Only for a certificate this CA signed: nothing about
  // another CA's certificate is sent.
  let revocation = null;
  if (issuer) {
    try {
      revocation = await revocationStatus(pageData.ocsp, leaf, issuer.certificate);
    } catch (error) {
      if (!(error instanceof OCSPError)) throw error;
      reasons.push(t("reason_status_unchecked", { reason: error.message }));
    }
  }
  let verdict = !issuer ? "bad" : reasons.length ? "problem" : "ok";
  if (revocation?.status === "revoked") verdict = "revoked";
  else if (revocation?.status === "unknown") {
    // Signed with the CA's key, yet not in its records (RFC 6960 §2.2 "unknown").
    verdict = "problem";
    reasons.push(t("status_unknown"));
  }
  return { verdict, reasons, issuer, revocation };
}

function revocationFacts(revocation) {
  if (!revocation) return [];
  if (revocation.status === "good") {
    return [[t("result_status"), t("status_good", { when: formatDate(revocation.thisUpdate) })]];
  }
  if (revocation.status === "unknown") return [[t("result_status"), t("status_unknown")]];
  return [
    [t("result_status"), t("status_revoked", { when: formatDate(revocation.revokedAt) })],
    [t("result_revocation_reason"), t(`revocation_reason_${revocation.reason}`)],
  ];
}

function profileName(leaf) {
  for (const policy of leaf.policies) {
    const name = pageData.profiles[policy];
    if (name) return t(`profile_${name}`);
  }
  return t("profile_unknown");
}

async function show(leaf, key) {
  const fingerprint = await sha256Fingerprint(leaf.der);
  const verdictText = $("verdict");
  const reasonList = $("reasons");
  reasonList.replaceChildren();
  const details = [];
  let verdict;
  if (leaf.ca) {
    const same = published.find((p) => der.equal(p.certificate.der, leaf.der));
    verdict = same ? "ca" : "bad";
    verdictText.textContent = same ? t("verdict_ca", { n: same.generation }) : t("verdict_other_ca");
    details.push([t("result_subject"), leaf.subject.text]);
  } else {
    const outcome = await evaluate(leaf);
    verdict = outcome.verdict;
    verdictText.textContent = t(`verdict_${verdict}`);
    for (const reason of outcome.reasons) {
      const item = document.createElement("li");
      item.textContent = reason;
      reasonList.append(item);
    }
    const days = Math.floor((leaf.notAfter - Date.now()) / 86400000);
    details.push(
      [t("result_subject"), leaf.subject.text],
      [t("result_email"), leaf.emails.join(", ")],
      [t("result_profile"), profileName(leaf)],
      [t("result_issuer"), leaf.issuer.text],
    );
    if (outcome.issuer) details.push([t("result_generation"), String(outcome.issuer.generation)]);
    details.push(...revocationFacts(outcome.revocation));
    details.push(
      [t("result_valid"), `${formatDay(leaf.notBefore)} – ${formatDay(leaf.notAfter)}`],
      [
        t("result_expires"),
        days >= 0
          ? `${formatDate(leaf.notAfter)} (${t("result_days_left", { days })})`
          : formatDate(leaf.notAfter),
      ],
    );
  }
  details.push([t("result_fingerprint"), fingerprint]);
  if (kind() === "p12") {
    const matches = key ? await keyMatches(key.pkcs8, leaf) : null;
    const keyText = matches === null ? "key_absent" : matches ? "key_matches" : "key_mismatch";
    details.push([t("result_key"), t(keyText)]);
    if (matches === false && verdict === "ok") verdict = "problem";
    if (key) key.pkcs8.fill(0);
  }
  verdictText.dataset.verdict = verdict;
  result.dataset.verdict = verdict;
  describe($("details"), details);
  reveal(result);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearMessages();
  clearFieldErrors(form);
  result.hidden = true;
  delete result.dataset.verdict;
  delete $("verdict").dataset.verdict;
  const file = fileInput.files[0];
  const problems = [];
  if (!file) problems.push([fileInput, t("choose_file")]);
  if (kind() === "p12" && !passphraseInput.value) {
    problems.push([passphraseInput, t("p12_needs_passphrase")]);
  }
  if (problems.length) {
    reportFieldErrors(problems);
    return;
  }
  setBusy(form, true);
  showProgress(t("checking"));
  try {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const { leaf, key } =
      kind() === "p12" ? await readP12(bytes, passphraseInput.value) : readCertificateFile(bytes);
    passphraseInput.value = "";
    clearMessages();
    await show(leaf, key);
  } catch (error) {
    showError(error instanceof UserError ? error.message : t("bad_file"));
    (kind() === "p12" && error.message === t("p12_wrong_passphrase") ? passphraseInput : fileInput).focus();
  } finally {
    setBusy(form, false);
    showKind();
  }
});
