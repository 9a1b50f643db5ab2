// Seed step 6 (SEED-R12): the applicant shows the vetted data with the enrollment ID and access
// code from the mailed notice, then confirms it. POST /applicant/online-input.

import {
  NetworkError,
  clearFieldErrors,
  clearMessages,
  describe,
  isEnrollmentId,
  normaliseCode,
  normaliseEnrollmentId,
  pageData,
  postJSON,
  problemKind,
  reportFieldErrors,
  reveal,
  setBusy,
  showError,
  showProgress,
  t,
} from "./ui.js";

const form = document.getElementById("credential-form");
const idInput = document.getElementById("enrollment-id");
const codeInput = document.getElementById("access-code");
const review = document.getElementById("review");
const done = document.getElementById("done");
const confirmButton = document.getElementById("confirm");
const cancelButton = document.getElementById("cancel");

// The QR code in the letter carries the credential in the fragment (#id=…&code=…), which the
// browser never sends to a server. Read it, keep it for the language switch, and drop it from
// the address bar and the history.
if (location.hash.length > 1) {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.get("id")) idInput.value = params.get("id");
  if (params.get("code")) codeInput.value = params.get("code");
  document.getElementById("language-switch").href += location.hash;
  history.replaceState(null, "", location.pathname + location.search);
}

let credential = null;

function validate() {
  clearFieldErrors(form);
  const problems = [];
  const enrollmentId = normaliseEnrollmentId(idInput.value);
  const accessCode = normaliseCode(codeInput.value);
  if (!idInput.value.trim()) {
    problems.push([idInput, t("field_required", { field: t("enrollment_id_label") })]);
  }
  else if (!isEnrollmentId(enrollmentId)) problems.push([idInput, t("enrollment_id_format")]);
  if (!accessCode) problems.push([codeInput, t("field_required", { field: t("access_code_label") })]);
  if (problems.length) {
    reportFieldErrors(problems);
    return null;
  }
  return { enrollmentId, accessCode };
}

function explain(reply) {
  const kind = problemKind(reply.body);
  const reason = reply.body?.reason;
  // 429 (RFC 6585): a wrong try from this address just now; it waits before the next one counts.
  if (reply.status === 429) return t("attempt_wait", { seconds: reply.body?.retryAfter ?? 15 });
  const max = pageData.maxAttempts; // [ra] max_attempts
  if (reply.status === 401) {
    const left = reply.body?.attemptsLeft;
    if (left === undefined) return t("unknown_credential");
    // The try that leaves none locks the code: say so, not "0 more wrong tries".
    if (left === 0) return t("wrong_access_code_now_locked", { max });
    return left === 1 ? t("wrong_access_code_one") : t("wrong_access_code", { left });
  }
  if (kind === "locked") {
    return reason === "access_code_used" ? t("access_code_used") : t("access_code_locked", { max });
  }
  if (kind === "pending") return t("online_input_too_early");
  if (kind === "illegal_transition") return t("online_input_closed");
  if (reply.status < 500 && reply.body?.detail) return reply.body.detail;
  return t("server_error", { status: reply.status });
}

async function send(confirm) {
  showProgress(t("working"));
  try {
    return await postJSON("/applicant/online-input", { ...credential, confirm });
  } catch (error) {
    if (error instanceof NetworkError) {
      showError(t("network_error"));
      return null;
    }
    throw error;
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearMessages();
  const values = validate();
  if (!values) return;
  credential = values;
  setBusy(form, true);
  const reply = await send(false);
  if (!reply || reply.status !== 200) {
    setBusy(form, false);
    if (reply) {
      showError(explain(reply));
      (reply.status === 401 ? codeInput : idInput).focus();
    }
    credential = null;
    return;
  }
  clearMessages();
  const data = reply.body;
  describe(document.getElementById("vetted"), [
    [t("field_profile"), t(`profile_${data.profile}`)],
    // In the order the CA writes names everywhere ([ca] name_order), as in the certificate.
    [
      t("field_name"),
      pageData.nameOrder === "family-given"
        ? `${data.familyName} ${data.givenName}`
        : `${data.givenName} ${data.familyName}`,
    ],
    [t("field_email"), data.email],
    [t("field_group"), pageData.groups[data.qualificationGroup] ?? data.qualificationGroup],
    [t("field_number"), data.qualificationNumber],
  ]);
  reveal(review);
});

confirmButton.addEventListener("click", async () => {
  confirmButton.disabled = true;
  cancelButton.disabled = true;
  const reply = await send(true);
  confirmButton.disabled = false;
  cancelButton.disabled = false;
  if (!reply) return;
  if (reply.status !== 200 || !reply.body.confirmed) {
    showError(explain(reply));
    return;
  }
  clearMessages();
  credential = null;
  codeInput.value = "";
  form.hidden = true;
  review.hidden = true;
  reveal(done);
});

cancelButton.addEventListener("click", () => {
  credential = null;
  review.hidden = true;
  clearMessages();
  setBusy(form, false);
  idInput.focus();
});
