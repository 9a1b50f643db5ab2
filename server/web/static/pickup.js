// Seed step 10 (SEED-R13): the page is an EST client (RFC 7030 §4.2.1, PROTOCOLS.md §5.2).
// 1. the key pair is made here with WebCrypto; 2. the PKCS#10 request is built and signed here;
// 3. it is POSTed to simpleenroll with HTTP Basic (enrollment ID, download PIN), waiting and
// sending the same request again on 202 + Retry-After (RFC 7030 §4.2.3); 4. the certs-only reply
// is read; 5. a passphrase is asked for and the PKCS#12 is assembled here; 6. it is offered for
// download. The private key exists only in this page's memory and in the file the subscriber
// saves: nothing but the request (public key and signature) is sent.

import * as der from "./der.js";
import { createCSR, generateKeyPair } from "./pkcs10.js";
import { createPFX } from "./pkcs12.js";
import { certificatesFromESTBody } from "./pkcs7.js";
import {
  NetworkError,
  clearFieldErrors,
  clearMessages,
  formatDate,
  isEnrollmentId,
  normaliseEnrollmentId,
  pageData,
  reportFieldErrors,
  reveal,
  setBusy,
  showError,
  showProgress,
  t,
} from "./ui.js";
import { parseCertificate } from "./x509.js";

const $ = (id) => document.getElementById(id);
const form = $("pickup-form");
const idInput = $("enrollment-id");
const pinInput = $("pin");
const waiting = $("waiting");
const passphraseStep = $("passphrase-step");
const passphraseForm = $("passphrase-form");
const passphraseInput = $("passphrase");
const againInput = $("passphrase-again");
const success = $("success");

const MAX_WAIT_SECONDS = 3600;

let session = null; // { enrollmentId, authorization, keyPair, csr, certificate, chain }
let retryTimer = null;

function warnOnLeave(event) {
  event.preventDefault();
  event.returnValue = t("leave_warning");
  return event.returnValue;
}

if (!globalThis.crypto?.subtle) {
  showError(t("no_webcrypto"));
  setBusy(form, true);
}

function base64Lines(bytes) {
  return (der.toBase64(bytes).match(/.{1,64}/g) ?? []).join("\n") + "\n";
}

function abandon(message, focus = pinInput) {
  // The key pair goes with the attempt: the next attempt makes a new one.
  session = null;
  clearTimeout(retryTimer);
  waiting.hidden = true;
  setBusy(form, false);
  showError(message);
  focus.focus();
}

// 401 from simpleenroll: the Jitsuin-Error header names the reason (the text says it in English).
function explainUnauthorized(response) {
  const code = response.headers.get("Jitsuin-Error");
  const left = response.headers.get("Jitsuin-Attempts-Left");
  if (code === "pin_used") return t("pin_used");
  if (code === "pin_locked" || code === "locked") return t("pin_locked");
  if (code === "expired") return t("pin_expired");
  if (left !== null) return Number(left) === 0 ? t("wrong_pin_now_locked") : t("wrong_pin", { left });
  return t("unknown_pin_credential");
}

async function enroll() {
  clearTimeout(retryTimer);
  showProgress(t("enrolling"));
  let response;
  try {
    response = await fetch(pageData.enroll, {
      method: "POST",
      headers: { "Content-Type": "application/pkcs10", Authorization: session.authorization },
      body: base64Lines(session.csr),
      // No cookies, no HTTP authentication cache, no login prompt: only the header above.
      credentials: "omit",
      cache: "no-store",
    });
  } catch (error) {
    abandon(t("network_error"), $("enrollment-id"));
    return;
  }
  const text = (await response.text()).trim();
  if (response.status === 200) {
    received(text);
  } else if (response.status === 202) {
    wait(response);
  } else if (response.status === 401) {
    abandon(explainUnauthorized(response));
  } else if (response.status === 429) {
    // RFC 6585: a wrong PIN from this address just now; it waits before the next try counts.
    abandon(t("attempt_wait", { seconds: response.headers.get("Retry-After") ?? "15" }));
  } else if (response.status === 400 && response.headers.get("Jitsuin-Error") === "key_reused") {
    abandon(t("key_reused"));
  } else if (response.status === 400 || response.status === 403 || response.status === 415) {
    abandon(t("csr_refused", { reason: text }));
  } else if (response.status === 503) {
    abandon(t("ca_unavailable", { reason: text }));
  } else {
    abandon(t("server_error", { status: response.status }));
  }
}

// 202 + Retry-After (RFC 7030 §4.2.3): send the same request again after the delay.
function wait(response) {
  const asked = Number.parseInt(response.headers.get("Retry-After") ?? "", 10) || 60;
  const seconds = Math.min(Math.max(asked, 1), MAX_WAIT_SECONDS);
  const when = new Date(Date.now() + seconds * 1000);
  clearMessages();
  $("waiting-text").textContent = t("pending", { when: formatDate(when, { seconds: true }) });
  if (waiting.hidden) reveal(waiting);
  retryTimer = setTimeout(enroll, seconds * 1000);
}

$("retry-now").addEventListener("click", () => {
  if (session) enroll();
});

$("stop").addEventListener("click", () => {
  clearTimeout(retryTimer);
  session = null;
  waiting.hidden = true;
  setBusy(form, false);
  showProgress(t("stopped"));
  idInput.focus();
});

function issuerOf(certificate) {
  for (const entry of pageData.caCertificates) {
    const ca = parseCertificate(der.fromHex(entry.der));
    const sameName = der.equal(ca.subject.der, certificate.issuer.der);
    const sameKey = !certificate.aki || (ca.ski && der.equal(ca.ski, certificate.aki));
    if (sameName && sameKey) return ca.der;
  }
  return null;
}

function received(text) {
  let certificate;
  try {
    const [first] = certificatesFromESTBody(text);
    if (!first) throw new Error("no certificate in the reply");
    certificate = parseCertificate(first);
  } catch (error) {
    abandon(t("bad_reply", { reason: error.message }));
    return;
  }
  session.certificate = certificate;
  const issuer = issuerOf(certificate);
  session.chain = issuer ? [issuer] : [];
  session.authorization = null; // the PIN is spent; forget it
  pinInput.value = "";
  waiting.hidden = true;
  clearMessages();
  window.addEventListener("beforeunload", warnOnLeave);
  const name = certificate.subject.attributes.find((a) => a.name === "CN")?.value ?? "";
  $("issued-to").textContent = [name, ...certificate.emails].filter(Boolean).join(" / ");
  $("issued-until").textContent = formatDate(certificate.notAfter);
  $("passphrase-username").value = session.enrollmentId; // for password managers
  form.hidden = true;
  reveal(passphraseStep);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearMessages();
  clearFieldErrors(form);
  const enrollmentId = normaliseEnrollmentId(idInput.value);
  const pin = pinInput.value.replace(/\s+/g, "");
  const problems = [];
  if (!idInput.value.trim()) {
    problems.push([idInput, t("field_required", { field: t("enrollment_id_label") })]);
  }
  else if (!isEnrollmentId(enrollmentId)) problems.push([idInput, t("enrollment_id_format")]);
  if (!pin) problems.push([pinInput, t("field_required", { field: t("pin_label") })]);
  else if (!/^\d{8}$/.test(pin)) problems.push([pinInput, t("pin_format")]);
  if (problems.length) {
    reportFieldErrors(problems);
    return;
  }
  const keyType = form.elements.keyType.value;
  setBusy(form, true);
  try {
    showProgress(t("making_key"));
    const keyPair = await generateKeyPair(keyType);
    showProgress(t("making_csr"));
    const csr = await createCSR(keyPair, keyType);
    session = {
      enrollmentId,
      keyType,
      keyPair,
      csr,
      authorization: `Basic ${btoa(`${enrollmentId}:${pin}`)}`,
    };
  } catch (error) {
    abandon(t("no_webcrypto"));
    return;
  }
  await enroll();
});

passphraseForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearMessages();
  clearFieldErrors(passphraseForm);
  const password = passphraseInput.value;
  if (!password) {
    reportFieldErrors([[passphraseInput, t("field_required", { field: t("passphrase_label") })]]);
    return;
  }
  if ([...password].length < 8) {
    reportFieldErrors([[passphraseInput, t("passphrase_short")]]);
    return;
  }
  if (password !== againInput.value) {
    reportFieldErrors([[againInput, t("passphrase_mismatch")]]);
    return;
  }
  setBusy(passphraseForm, true);
  showProgress(t("building_p12"));
  const certificate = session.certificate;
  let pfx;
  try {
    pfx = await createPFX({
      privateKey: session.keyPair.privateKey,
      certificate: certificate.der,
      chain: session.chain,
      friendlyName: certificate.emails[0] ?? session.enrollmentId,
      password,
    });
  } catch (error) {
    setBusy(passphraseForm, false);
    showError(t("bad_reply", { reason: error.message }));
    return;
  }
  passphraseInput.value = "";
  againInput.value = "";
  const stem = `jitsuin-${session.enrollmentId}`;
  const p12Link = $("download-p12");
  p12Link.href = URL.createObjectURL(new Blob([pfx], { type: "application/x-pkcs12" }));
  p12Link.download = `${stem}.p12`;
  const certLink = $("download-cert");
  const pem = der.toPEM("CERTIFICATE", certificate.der);
  certLink.href = URL.createObjectURL(new Blob([pem], { type: "application/x-pem-file" }));
  certLink.download = `${stem}.pem`;
  // The key is now only in the file: drop the page's reference to it.
  session.keyPair = null;
  window.removeEventListener("beforeunload", warnOnLeave);
  clearMessages();
  passphraseStep.hidden = true;
  reveal(success);
});
