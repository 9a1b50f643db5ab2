// Seed step 10 (SEED-R13): the page is an EST client (RFC 7030 §4.2.1, docs/protocols.md §5.2).
// 1. the key pair is made here with WebCrypto; 2. the PKCS#10 request is built and signed here;
// 3. it is POSTed to simpleenroll with HTTP Basic (enrollment ID, download PIN); 4. the certs-only
// reply is read; 5. a passphrase is asked for and the PKCS#12 is assembled here; 6. it is offered
// for download, and offered again until the page is left. The private key exists only in this
// page's memory and in the file the subscriber saves: nothing but the request (public key and
// signature) is sent. The page asks before it is left from the moment the certificate arrives
// until the .p12 has been saved: the PIN is spent by then, and a key lost here is lost for good.
//
// A 202 (RFC 7030 §4.2.3) means the application is not approved yet, so no PIN exists and the
// one typed cannot be right: the page says to wait for the PIN e-mail and does not send the
// request again (a retry after the approval would be compared with the new PIN and count as a
// wrong try). EST clients that poll keep the 202 + Retry-After (docs/divergences.md).

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
const passphraseStep = $("passphrase-step");
const passphraseForm = $("passphrase-form");
const passphraseInput = $("passphrase");
const againInput = $("passphrase-again");
const success = $("success");

let session = null; // { enrollmentId, authorization, keyPair, csr, certificate, chain }

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
  setBusy(form, false);
  showError(message);
  focus.focus();
}

// 401 from simpleenroll: the Jitsuin-Error header names the reason (the text says it in English).
function explainUnauthorized(response) {
  const code = response.headers.get("Jitsuin-Error");
  const left = response.headers.get("Jitsuin-Attempts-Left");
  if (code === "pin_used") return t("pin_used");
  const max = pageData.maxAttempts;
  if (code === "pin_locked" || code === "locked") return t("pin_locked", { max });
  if (code === "expired") return t("pin_expired");
  if (left === null) return t("unknown_pin_credential");
  if (Number(left) === 0) return t("wrong_pin_now_locked", { max });
  return Number(left) === 1 ? t("wrong_pin_one") : t("wrong_pin", { left });
}

async function enroll() {
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
    abandon(t("not_approved_yet"), idInput);
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
  // The key is now only in the file: drop the page's reference to it. The file stays in the
  // page (the link's blob) until the page is left, so it can be saved again.
  session.keyPair = null;
  clearMessages();
  passphraseStep.hidden = true;
  reveal(success);
});

// The .p12 is saved when its link is clicked (the browser takes the download from there): only
// then may the page be left without asking. The link stays, to save the file again.
$("download-p12").addEventListener("click", () => {
  window.removeEventListener("beforeunload", warnOnLeave);
  const state = $("save-state");
  state.textContent = t("saved");
  state.classList.add("saved");
  $("download-p12").textContent = t("save_again");
});
