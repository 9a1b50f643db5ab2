// Where the application stands (FLOW.md), found by the enrollment ID. The reply holds the state
// and the PIN's validity only, never personal data (SEED-R18). POST /applicant/status.

import {
  NetworkError,
  clearFieldErrors,
  clearMessages,
  formatDate,
  isEnrollmentId,
  normaliseEnrollmentId,
  pageData,
  postJSON,
  reportFieldErrors,
  reveal,
  setBusy,
  showError,
  showProgress,
  t,
} from "./ui.js";

const form = document.getElementById("status-form");
const idInput = document.getElementById("enrollment-id");
const result = document.getElementById("result");

// The seed's steps as the applicant sees them, and the states that belong to each.
const STAGES = [
  ["stage_documents", ["received", "documents_deficient", "documents_accepted"]],
  ["stage_inquiry", ["inquiry_sent"]],
  ["stage_return", ["identity_confirmed", "paid"]],
  ["stage_online_input", ["awaiting_online_input"]],
  ["stage_approval", ["online_input_received"]],
  ["stage_pin", ["approved", "pin_sent"]],
  ["stage_issued", ["issued", "revoked", "expired"]],
];

function renderStages(state) {
  const list = document.getElementById("stages");
  list.replaceChildren();
  const current = STAGES.findIndex(([, states]) => states.includes(state));
  STAGES.forEach(([key], index) => {
    const item = document.createElement("li");
    item.textContent = t(key);
    if (current >= 0 && index < current) {
      item.className = "done";
      item.append(` (${t("stage_done")})`);
    } else if (index === current) {
      item.className = "current";
      item.setAttribute("aria-current", "step");
      item.append(` (${t("stage_now")})`);
    }
    list.append(item);
  });
  list.hidden = current < 0; // rejected or abandoned: no place on the path
}

function renderExtra(data) {
  const extra = document.getElementById("state-extra");
  extra.replaceChildren();
  const link = (href, label) => {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = label;
    return a;
  };
  if (data.state === "awaiting_online_input") {
    extra.append(link(pageData.links.onlineInput, t("go_online_input")));
  } else if (data.pin && (data.state === "pin_sent" || data.state === "approved")) {
    if (data.pin.locked) extra.textContent = t("pin_is_locked");
    else if (data.pin.expired) extra.textContent = t("pin_is_expired");
    else {
      extra.append(t("pin_expires", { when: formatDate(new Date(data.pin.expiresAt)) }), " ");
      extra.append(link(pageData.links.pickup, t("go_pickup")));
    }
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearMessages();
  clearFieldErrors(form);
  result.hidden = true;
  const enrollmentId = normaliseEnrollmentId(idInput.value);
  if (!idInput.value.trim()) {
    reportFieldErrors([[idInput, t("field_required", { field: t("enrollment_id_label") })]]);
    return;
  }
  if (!isEnrollmentId(enrollmentId)) {
    reportFieldErrors([[idInput, t("enrollment_id_format")]]);
    return;
  }
  setBusy(form, true);
  showProgress(t("working"));
  let reply;
  try {
    reply = await postJSON("/applicant/status", { enrollmentId });
  } catch (error) {
    if (!(error instanceof NetworkError)) throw error;
    setBusy(form, false);
    showError(t("network_error"));
    return;
  }
  setBusy(form, false);
  if (reply.status !== 200) {
    const unknown = reply.status === 401 || reply.status === 404;
    showError(unknown ? t("unknown_enrollment") : t("server_error", { status: reply.status }));
    idInput.focus();
    return;
  }
  clearMessages();
  const state = reply.body.state;
  document.getElementById("state-text").textContent = t(`state_${state}`);
  result.dataset.state = state;
  renderStages(state);
  renderExtra(reply.body);
  reveal(result);
});
