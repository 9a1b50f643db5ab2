// Where the application stands (docs/flow.md), found by the enrollment ID. The reply holds the
// state and the PIN's validity only, never personal data (SEED-R18). POST /applicant/status.

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

// The seed's steps as the applicant sees them, numbered as the seed numbers them (the numbers
// the page titles and the letters use: online input is step 6, pickup step 10), and the states
// that belong to each.
const STAGES = [
  ["stage_documents", [1, 2], ["received", "documents_deficient", "documents_accepted"]],
  ["stage_inquiry", [3], ["inquiry_sent"]],
  ["stage_return", [4, 5], ["identity_confirmed", "paid"]],
  ["stage_online_input", [6], ["awaiting_online_input"]],
  ["stage_approval", [7, 8], ["online_input_received"]],
  ["stage_pin", [9], ["approved", "pin_sent"]],
  ["stage_issued", [10], ["issued", "revoked", "expired"]],
];

function stepLabel([first, last]) {
  return last === undefined ? t("stage_step", { n: first }) : t("stage_steps", { first, last });
}

function renderStages(state) {
  const list = document.getElementById("stages");
  list.replaceChildren();
  const current = STAGES.findIndex(([, , states]) => states.includes(state));
  STAGES.forEach(([key, steps], index) => {
    const item = document.createElement("li");
    const step = document.createElement("span");
    step.className = "step";
    step.textContent = stepLabel(steps);
    item.append(step, " ", t(key));
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
