// Shared by the page modules: the strings and data the server rendered into the page, messages
// that screen readers announce (role="alert" / role="status"), and errors tied to their fields.

const data = JSON.parse(document.getElementById("page-data").textContent);

export const pageData = data;
export const lang = data.lang;

export function t(key, values = {}) {
  const template = data.strings[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

const $ = (id) => document.getElementById(id);

export function showError(text) {
  $("progress").textContent = "";
  $("message").textContent = text;
}

export function showProgress(text) {
  $("message").textContent = "";
  $("progress").textContent = text;
}

export function clearMessages() {
  $("message").textContent = "";
  $("progress").textContent = "";
}

export function fieldError(input, text) {
  const holder = $(`${input.id}-error`);
  if (holder) holder.textContent = text;
  if (text) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

export function clearFieldErrors(form) {
  for (const input of form.querySelectorAll("input")) fieldError(input, "");
}

// Field problems: each shown under its field, a summary announced, focus on the first.
export function reportFieldErrors(problems) {
  for (const [input, text] of problems) fieldError(input, text);
  showError(t("errors_in_form"));
  problems[0][0].focus();
}

export function reveal(section) {
  section.hidden = false;
  (section.querySelector("[tabindex='-1']") ?? section).focus();
}

export function setBusy(form, busy) {
  for (const control of form.querySelectorAll("input, button, select")) control.disabled = busy;
  form.setAttribute("aria-busy", busy ? "true" : "false");
}

export function formatDate(date, { seconds = false } = {}) {
  const locale = lang === "ja" ? "ja-JP" : "en-GB";
  const timeStyle = seconds ? "medium" : "short";
  return new Intl.DateTimeFormat(locale, { dateStyle: "long", timeStyle }).format(date);
}

export function formatDay(date) {
  const locale = lang === "ja" ? "ja-JP" : "en-GB";
  return new Intl.DateTimeFormat(locale, { dateStyle: "long" }).format(date);
}

// Crockford base32 as the RA writes it (server/ra/credentials.py): separators dropped, upper
// case, O read as 0 and I/L as 1.
export function normaliseCode(text) {
  return text
    .toUpperCase()
    .replace(/[^0-9A-Z]/g, "")
    .replace(/O/g, "0")
    .replace(/[IL]/g, "1");
}

export function normaliseEnrollmentId(text) {
  const code = normaliseCode(text);
  return code.length === 10 ? `${code.slice(0, 5)}-${code.slice(5)}` : code;
}

export const isEnrollmentId = (text) => /^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$/.test(text);

export class NetworkError extends Error {}

// POST JSON to the applicant API; returns { status, body } where body is the JSON reply or the
// RFC 9457 problem document.
export async function postJSON(url, payload) {
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(payload),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (error) {
    throw new NetworkError(error.message);
  }
  let body = {};
  try {
    body = await response.json();
  } catch {
    body = {};
  }
  return { status: response.status, body };
}

// The jitsuin problem kind (urn:jitsuin:problem:<kind>) of a problem document.
export function problemKind(body) {
  const type = String(body?.type ?? "");
  return type.startsWith("urn:jitsuin:problem:") ? type.slice("urn:jitsuin:problem:".length) : "";
}

export function describe(list, pairs) {
  list.replaceChildren();
  for (const [term, value] of pairs) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    list.append(dt, dd);
  }
}
