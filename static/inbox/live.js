// The inbox page's live behaviour: one websocket per tab, gap-free through the event log, and
// what the page does without reloading (actions, replies, edits, drafts, translations).
//
// Every logged event carries the user's cursor. Events are applied in cursor order; a gap (or
// a reconnect) triggers GET /api/v1/events?since=<cursor>, and an event already applied is
// dropped. Typing and presence are live-only (cursor null).
//
// User text only ever reaches the page as HTML the server escaped (fragments it rendered) or
// through textContent / form values.
//
// The order page uses the same module: its thread holds the order's messages, its composer
// writes into the same conversation, and its panel (status, actions, timeline) is re-fetched
// when an order update arrives.

const root = document.getElementById("inbox") || document.getElementById("order-page");

const state = {
  cursor: Number(root.dataset.cursor || 0),
  userId: Number(root.dataset.userId),
  username: root.dataset.username,
  conversationId: root.dataset.conversationId ? Number(root.dataset.conversationId) : null,
  otherUserId: root.dataset.otherUserId ? Number(root.dataset.otherUserId) : null,
  otherLastRead: Number(root.dataset.otherLastRead || 0),
  enterSends: root.dataset.enterSends !== "0",
  orderNumber: root.dataset.orderNumber || null,
  catchingUp: null,
  queued: [],
};

const thread = document.getElementById("thread");
const composer = document.getElementById("composer");
const statusLabel = document.getElementById("connection-state");
const messageBase = root.dataset.messageBase || "/inbox/messages/";

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  if (match) return decodeURIComponent(match[1]);
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

function newClientId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// URL-encoded, not FormData: daphne (Twisted) parses multipart bodies itself and answers an
// empty one (a POST without fields) with a bare 400 before Django sees it.
function postForm(url, fields = {}, { json = false, keepalive = false } = {}) {
  const body = fields instanceof URLSearchParams ? fields : new URLSearchParams(fields);
  const headers = { "X-CSRFToken": csrfToken() };
  if (json) headers.Accept = "application/json";
  return fetch(url, { method: "POST", body, headers, credentials: "same-origin", keepalive });
}

// The detail of a refusal: {"error", "detail"} JSON from the server, else a plain sentence.
async function refusalDetail(response, fallback) {
  try {
    const body = await response.json();
    if (body && typeof body.detail === "string" && body.detail) return body.detail;
  } catch {
    // Not JSON (a proxy's error page, a 404 page): say it plainly.
  }
  return fallback;
}

function htmlFragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html; // server-rendered: user text in it is escaped
  return template.content;
}

// ---- Notices -------------------------------------------------------------------------------

const notice = document.getElementById("inbox-notice");
let noticeTimer = null;

function showNotice(text, { error = false } = {}) {
  if (!notice) return;
  document.getElementById("inbox-notice-text").textContent = text;
  notice.classList.toggle("error", error);
  notice.setAttribute("role", error ? "alert" : "status");
  notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (notice.hidden = true), error ? 12000 : 5000);
}

document.getElementById("inbox-notice-close")?.addEventListener("click", () => (notice.hidden = true));

// ---- Thread --------------------------------------------------------------------------------

function lastMessageId() {
  const items = thread ? thread.querySelectorAll("li.message") : [];
  return items.length ? Number(items[items.length - 1].dataset.messageId) : 0;
}

function nearBottom() {
  return thread.scrollHeight - thread.scrollTop - thread.clientHeight < 120;
}

function scrollToBottom() {
  thread.scrollTop = thread.scrollHeight;
}

function insertMessages(html) {
  const stick = nearBottom();
  let addedMine = false;
  let added = 0;
  for (const item of htmlFragment(html).querySelectorAll("li.message")) {
    if (document.getElementById(item.id)) continue; // already shown: drop the duplicate
    thread.appendChild(item);
    armEditWindow(item);
    added += 1;
    if (item.dataset.mine === "1") addedMine = true;
  }
  if (window.htmx) htmx.process(thread);
  updateSeen();
  if (stick || addedMine) scrollToBottom();
  return added;
}

// Put a freshly rendered message in place of the shown one (an edit, a deletion).
function replaceMessage(html) {
  const fresh = htmlFragment(html).querySelector("li.message");
  if (!fresh) return;
  const shown = document.getElementById(fresh.id);
  if (!shown) return;
  const marker = shown.querySelector("#seen-marker");
  if (marker) fresh.appendChild(marker);
  shown.replaceWith(fresh);
  armEditWindow(fresh);
  if (window.htmx) htmx.process(fresh);
}

// One at a time, so that an edit then a deletion can never end up showing the edit.
let messageChain = Promise.resolve();
function refreshMessage(messageId) {
  messageChain = messageChain.then(async () => {
    const shown = document.getElementById(`m-${messageId}`);
    if (!shown || shown.classList.contains("editing")) return;
    try {
      const response = await fetch(`${messageBase}${messageId}/`, { credentials: "same-origin" });
      if (response.ok) replaceMessage(await response.text());
    } catch {
      // Offline: the next visit shows the change.
    }
  });
  return messageChain;
}

let appendChain = Promise.resolve();
function fetchNewMessages() {
  let added = 0;
  appendChain = appendChain
    .then(async () => {
      const response = await fetch(`${root.dataset.messagesUrl}?after=${lastMessageId()}`, { credentials: "same-origin" });
      if (response.ok) added = insertMessages(await response.text());
    })
    .catch(() => {});
  return appendChain.then(() => added);
}

// A message older than the last one shown: a held message a moderator approved after later
// ones were written. It goes in its place among the shown ones, before the first later one.
function placeMessage(html) {
  const fresh = htmlFragment(html).querySelector("li.message");
  if (!fresh || document.getElementById(fresh.id)) return 0;
  const id = Number(fresh.dataset.messageId);
  const later = [...thread.querySelectorAll("li.message")].find((item) => Number(item.dataset.messageId) > id);
  const stick = nearBottom();
  if (later) later.before(fresh);
  else thread.appendChild(fresh);
  armEditWindow(fresh);
  if (window.htmx) htmx.process(fresh);
  updateSeen();
  if (stick && !later) scrollToBottom();
  return 1;
}

function fetchOlderMessage(messageId) {
  let added = 0;
  appendChain = appendChain
    .then(async () => {
      if (document.getElementById(`m-${messageId}`)) return;
      const first = thread.querySelector("li.message");
      // Older than everything shown while earlier messages are not loaded: "Load earlier" brings it.
      if (first && messageId < Number(first.dataset.messageId) && thread.querySelector("li.load-earlier")) return;
      const response = await fetch(`${messageBase}${messageId}/`, { credentials: "same-origin" });
      if (response.ok) added = placeMessage(await response.text());
    })
    .catch(() => {});
  return appendChain.then(() => added);
}

function updateSeen() {
  const marker = document.getElementById("seen-marker");
  if (!marker || !thread) return;
  const mine = thread.querySelectorAll("li.message[data-mine='1']");
  const latestMine = mine.length ? mine[mine.length - 1] : null;
  if (latestMine && Number(latestMine.dataset.messageId) <= state.otherLastRead) {
    latestMine.appendChild(marker);
    marker.hidden = false;
  } else {
    marker.hidden = true;
  }
}

let readInFlight = false;
async function markReadIfVisible() {
  if (!root.dataset.readUrl) return; // the order page shows part of the thread: it marks nothing read
  if (!state.conversationId || document.visibilityState !== "visible" || readInFlight) return;
  readInFlight = true;
  try {
    await postForm(root.dataset.readUrl);
  } catch {
    // Offline: the next message or visit marks it read.
  } finally {
    readInFlight = false;
  }
}

// Scroll to a message and make it flash (a quote clicked, a search result opened).
function flashMessage(item) {
  item.scrollIntoView({ block: "center", behavior: "smooth" });
  item.classList.remove("flash");
  void item.offsetWidth; // restart the animation
  item.classList.add("flash");
  item.focus({ preventScroll: true });
  setTimeout(() => item.classList.remove("flash"), 2200);
}

// ---- Edit window: own messages can change for 15 minutes ------------------------------------

function armEditWindow(item) {
  const seconds = Number(item.dataset.editSecondsLeft || 0);
  if (seconds > 0 && !item.editDeadline) item.editDeadline = Date.now() + seconds * 1000;
}

function closeEditWindows() {
  if (!thread) return;
  const now = Date.now();
  for (const item of thread.querySelectorAll("li.message[data-edit-seconds-left]")) {
    armEditWindow(item); // e.g. loaded by "Load earlier messages"
    if (item.editDeadline > now || item.classList.contains("editing")) continue;
    item.querySelectorAll('[data-action="edit"], [data-action="delete"], .delete-confirm').forEach((el) => el.remove());
    delete item.dataset.editSecondsLeft;
    delete item.dataset.body;
  }
}

// ---- Reply ----------------------------------------------------------------------------------

const reply = {
  bar: document.getElementById("reply-bar"),
  input: document.getElementById("reply-to"),
};

function excerptOf(item) {
  const text = (item.querySelector(".bubble")?.textContent || "").replace(/\s+/g, " ").trim();
  return text.length > 140 ? `${text.slice(0, 139)}…` : text;
}

function startReply(item) {
  if (!reply.bar) return;
  const stick = nearBottom();
  reply.input.value = item.dataset.messageId;
  document.getElementById("reply-name").textContent = item.dataset.senderName || "";
  document.getElementById("reply-excerpt").textContent = excerptOf(item);
  reply.bar.hidden = false;
  if (stick) scrollToBottom(); // the bar takes room from the thread: keep the end in view
  composer.querySelector("textarea").focus();
}

function cancelReply() {
  if (!reply.bar) return;
  reply.input.value = "";
  reply.bar.hidden = true;
}

document.getElementById("reply-cancel")?.addEventListener("click", () => {
  cancelReply();
  composer.querySelector("textarea").focus();
});

// ---- Edit and delete ------------------------------------------------------------------------

function startEdit(item) {
  if (item.classList.contains("editing") || item.dataset.body === undefined) return;
  item.classList.add("editing");
  const bubble = item.querySelector(".bubble");
  const form = document.createElement("form");
  form.className = "edit-form";
  const label = document.createElement("label");
  label.className = "visually-hidden";
  label.htmlFor = `edit-${item.dataset.messageId}`;
  label.textContent = "Edit your message";
  const textarea = document.createElement("textarea");
  textarea.id = label.htmlFor;
  textarea.rows = 3;
  textarea.value = item.dataset.body;
  const save = document.createElement("button");
  save.type = "submit";
  save.className = "small-button primary";
  save.textContent = "Save";
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.className = "small-button";
  cancel.textContent = "Cancel";
  const error = document.createElement("div");
  error.className = "form-error";
  error.setAttribute("role", "alert");
  error.hidden = true;
  const buttons = document.createElement("div");
  buttons.className = "edit-buttons";
  buttons.append(save, cancel);
  form.append(label, textarea, buttons, error);
  bubble.hidden = true;
  bubble.after(form);
  textarea.focus();
  textarea.setSelectionRange(textarea.value.length, textarea.value.length);

  const stop = () => {
    form.remove();
    bubble.hidden = false;
    item.classList.remove("editing");
    item.querySelector('[data-action="edit"]')?.focus();
  };
  const submit = async () => {
    save.disabled = true;
    let response;
    try {
      response = await postForm(`${messageBase}${item.dataset.messageId}/edit/`, { body: textarea.value }, { json: true });
    } catch {
      error.textContent = "Not saved: the connection dropped. Your text is kept; try again.";
      error.hidden = false;
      save.disabled = false;
      return;
    }
    save.disabled = false;
    if (response.ok) {
      item.classList.remove("editing");
      replaceMessage(await response.text());
      document.getElementById(item.id)?.querySelector('[data-action="edit"]')?.focus();
      return;
    }
    error.textContent = await refusalDetail(response, `Not saved (error ${response.status}). Your text is kept.`);
    error.hidden = false; // the text stays in the editor
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  cancel.addEventListener("click", stop);
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      stop();
    } else if (wantsSend(event)) {
      event.preventDefault();
      submit();
    }
  });
}

function askDelete(item, button) {
  if (item.querySelector(".delete-confirm")) return;
  const box = document.createElement("span");
  box.className = "delete-confirm";
  const question = document.createElement("span");
  question.textContent = "Delete this message?";
  const yes = document.createElement("button");
  yes.type = "button";
  yes.className = "link-button danger-text";
  yes.textContent = "Yes, delete";
  const no = document.createElement("button");
  no.type = "button";
  no.className = "link-button";
  no.textContent = "Keep it";
  box.append(question, " ", yes, " ", no);
  button.after(box);
  button.hidden = true;
  yes.focus();
  no.addEventListener("click", () => {
    box.remove();
    button.hidden = false;
    button.focus();
  });
  yes.addEventListener("click", async () => {
    yes.disabled = true;
    let response;
    try {
      response = await postForm(`${messageBase}${item.dataset.messageId}/delete/`, {}, { json: true });
    } catch {
      showNotice("Not deleted: the connection dropped. Try again.", { error: true });
      yes.disabled = false;
      return;
    }
    if (response.ok) {
      replaceMessage(await response.text());
      return;
    }
    box.remove();
    button.hidden = false;
    showNotice(await refusalDetail(response, `Not deleted (error ${response.status}).`), { error: true });
  });
}

// ---- Translate ------------------------------------------------------------------------------

async function translate(item, button) {
  const slot = item.querySelector(".translation-slot");
  if (!slot) return;
  if (slot.childElementCount && !slot.querySelector(".translation-error")) {
    slot.hidden = !slot.hidden; // shown already: the button toggles it
    button.textContent = slot.hidden ? "Translate" : "Hide translation";
    button.setAttribute("aria-expanded", String(!slot.hidden));
    return;
  }
  button.disabled = true;
  button.textContent = "Translating…";
  let response;
  try {
    response = await postForm(`${messageBase}${item.dataset.messageId}/translate/`, {}, { json: false });
  } catch {
    button.disabled = false;
    button.textContent = "Translate";
    showNotice("Not translated: the connection dropped. Try again.", { error: true });
    return;
  }
  button.disabled = false;
  button.textContent = "Translate";
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("text/html") && response.status < 500) {
    // The server's fragment: the translation (or why there is none) to show under the original.
    const fragment = htmlFragment(await response.text());
    if (fragment.querySelector(".translation")) {
      slot.replaceChildren(fragment);
      slot.hidden = false;
      slot.scrollIntoView({ block: "nearest", behavior: "smooth" });
      if (response.ok && !slot.querySelector(".translation-error")) {
        button.textContent = "Hide translation";
        button.setAttribute("aria-expanded", "true");
      }
      return;
    }
  }
  // A refusal in JSON ({"error", "detail"}), or no translation service at all.
  showNotice(await refusalDetail(response, `Not translated (error ${response.status}).`), { error: true });
}

// ---- Clicks in the thread -------------------------------------------------------------------

thread?.addEventListener("click", (event) => {
  const quote = event.target.closest("a.quote");
  if (quote) {
    const original = document.getElementById(`m-${quote.dataset.quoteId}`);
    if (original) {
      event.preventDefault();
      flashMessage(original);
    } // else: the link opens the conversation at that message
    return;
  }
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const item = button.closest("li.message");
  if (!item) return;
  const action = button.dataset.action;
  if (action === "reply") startReply(item);
  else if (action === "edit") startEdit(item);
  else if (action === "delete") askDelete(item, button);
  else if (action === "translate") translate(item, button);
});

// ---- Cards: offers, calls, consultations; the seller's tools --------------------------------

// The buttons of a card (Accept, Decline, Withdraw, Book) and "Start call": sent in the
// background, answered in JSON. The service decides once; whatever the answer, the card is
// re-rendered as it now is (message.updated re-renders it on every other tab too).
document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!form.matches("form[data-card-form]")) return;
  event.preventDefault();
  if (form.dataset.busy) return; // a double click sends once
  form.dataset.busy = "1";
  const buttons = [...form.querySelectorAll("button")];
  buttons.forEach((button) => (button.disabled = true));
  const item = form.closest("li.message");
  let response;
  try {
    response = await postForm(form.getAttribute("action"), new URLSearchParams(new FormData(form)), { json: true });
  } catch {
    showNotice("Not done: the connection dropped. Try again.", { error: true });
    return;
  } finally {
    delete form.dataset.busy;
    buttons.forEach((button) => (button.disabled = false));
  }
  if (response.ok) {
    const result = await response.json();
    showNotice(result.detail || "Done.");
  } else {
    showNotice(await refusalDetail(response, `Not done (error ${response.status}).`), { error: true });
  }
  if (item) refreshMessage(item.dataset.messageId);
  if (thread) fetchNewMessages();
});

// htmx forms that answer a refusal with the form again (errors beside the fields, the text
// kept): swap those answers in too.
document.addEventListener("htmx:beforeSwap", (event) => {
  const status = event.detail.xhr.status;
  if (status >= 400 && status < 500 && event.target.closest?.("[data-swap-errors]")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
document.addEventListener("htmx:load", (event) => {
  const invalid = event.detail.elt?.querySelector?.("[aria-invalid='true']");
  if (invalid) invalid.focus();
});

// A tool posted its card (the server says so in HX-Trigger): close the tool, show the card.
document.addEventListener("card-posted", (event) => {
  for (const tool of document.querySelectorAll("details.tool[open]")) tool.removeAttribute("open");
  if (event.detail && typeof event.detail.message === "string") showNotice(event.detail.message);
  if (thread) fetchNewMessages();
});

document.addEventListener("click", (event) => {
  const dismiss = event.target.closest?.("[data-dismiss]");
  if (dismiss) document.getElementById(dismiss.dataset.dismiss)?.remove();
});

// ---- Reports: the conversation, or a message of the other person ------------------------------

// "Report…" in the Actions menu and "Report" under a message open the report form in a dialog
// (without script, or without <dialog>, the links open the report page instead).
const reportDialog = document.getElementById("report-dialog");

function openReport(link) {
  if (!reportDialog || typeof reportDialog.showModal !== "function") return false;
  const form = reportDialog.querySelector("form");
  form.reset();
  const messageId = link.dataset.reportMessage || "";
  form.querySelector("input[name=message_id]").value = messageId;
  const about = document.getElementById("report-about");
  const item = messageId ? document.getElementById(`m-${messageId}`) : null;
  about.textContent = item ? `About this message: “${excerptOf(item)}”` : about.dataset.conversationText;
  const error = document.getElementById("report-error");
  error.textContent = "";
  error.hidden = true;
  link.closest("details.menu")?.removeAttribute("open");
  reportDialog.returnFocusTo = link.closest("li.message")?.querySelector("a[data-report]") || link;
  reportDialog.showModal();
  form.querySelector("input[name=reason]")?.focus();
  return true;
}

function closeReport() {
  if (!reportDialog?.open) return;
  reportDialog.close();
}

reportDialog?.addEventListener("close", () => {
  const back = reportDialog.returnFocusTo;
  if (back && document.contains(back)) back.focus();
  else document.querySelector("#thread-actions summary")?.focus();
});

document.addEventListener("click", (event) => {
  const link = event.target.closest?.("a[data-report]");
  if (link && openReport(link)) {
    event.preventDefault();
    return;
  }
  if (event.target.closest?.("[data-report-cancel]")) closeReport();
});

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!form.matches("form[data-report-form]") || !reportDialog?.contains(form)) return;
  event.preventDefault();
  const error = document.getElementById("report-error");
  const fields = new URLSearchParams(new FormData(form));
  if (!fields.get("reason")) {
    error.textContent = "Choose why you are reporting it.";
    error.hidden = false;
    return;
  }
  const buttons = [...form.querySelectorAll("button")];
  buttons.forEach((button) => (button.disabled = true));
  let response;
  try {
    response = await postForm(form.getAttribute("action"), fields, { json: true });
  } catch {
    error.textContent = "Not sent: the connection dropped. Try again.";
    error.hidden = false;
    return;
  } finally {
    buttons.forEach((button) => (button.disabled = false));
  }
  if (!response.ok) {
    error.textContent = await refusalDetail(response, `Not sent (error ${response.status}). Try again.`);
    error.hidden = false;
    return;
  }
  const result = await response.json();
  closeReport();
  for (const conversation of result.conversations || []) applyConversationState(conversation);
  showNotice(result.detail || "Report sent.");
  refreshList();
});

// ---- The inbox's panel: the order history between the two ------------------------------------

let historyChain = Promise.resolve();
function refreshOrderHistory() {
  const url = root.dataset.orderHistoryUrl;
  if (!url) return historyChain;
  historyChain = historyChain.then(async () => {
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) return;
      const fresh = htmlFragment(await response.text()).getElementById("order-history");
      if (fresh) document.getElementById("order-history")?.replaceWith(fresh);
    } catch {
      // Offline: the next visit shows it.
    }
  });
  return historyChain;
}

// ---- Order page: the panel follows the order ------------------------------------------------

function isUpdateOfThisOrder(message) {
  return Boolean(state.orderNumber && message && message.kind === "system" && message.order?.number === state.orderNumber);
}

// Re-fetch the status, actions and timeline, keeping what the person was typing in its forms.
let panelChain = Promise.resolve();
function refreshOrderPanel() {
  const url = root.dataset.orderPanelUrl;
  if (!url) return panelChain;
  panelChain = panelChain.then(async () => {
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) return;
      const fresh = htmlFragment(await response.text()).getElementById("order-panel");
      const current = document.getElementById("order-panel");
      if (!fresh || !current) return;
      const typed = new Map();
      for (const field of current.querySelectorAll("textarea[id], input[id]:not([type=hidden])")) {
        if (field.value) typed.set(field.id, field.value);
      }
      const checked = [...current.querySelectorAll("input[type=radio]:checked")].map((box) => [box.name, box.value]);
      const openDetails = [...current.querySelectorAll("details[open]")].map((details) => details.className);
      const focusedId = current.contains(document.activeElement) ? document.activeElement.id : null;
      current.replaceWith(fresh);
      for (const [id, value] of typed) {
        const field = document.getElementById(id);
        if (field && fresh.contains(field)) field.value = value;
      }
      for (const [name, value] of checked) {
        const box = fresh.querySelector(`input[type=radio][name="${CSS.escape(name)}"][value="${CSS.escape(value)}"]`);
        if (box) box.checked = true;
      }
      for (const className of openDetails) {
        if (className) fresh.querySelector(`details[class="${CSS.escape(className)}"]`)?.setAttribute("open", "");
      }
      if (focusedId) document.getElementById(focusedId)?.focus({ preventScroll: true });
      if (window.htmx) htmx.process(fresh);
    } catch {
      // Offline: the next update (or a reload) shows it.
    }
  });
  return panelChain;
}

// ---- Conversation list ---------------------------------------------------------------------

function listQuery() {
  // The list's state lives in the address bar (the name search replaces it as one types).
  const params = new URLSearchParams(window.location.search);
  const kept = new URLSearchParams();
  for (const key of ["filter", "label", "q"]) if (params.get(key)) kept.set(key, params.get(key));
  return kept;
}

function loadedPages() {
  const pages = [...document.querySelectorAll(".conversation-item[data-page]")].map((row) => Number(row.dataset.page));
  return Math.max(1, ...pages);
}

function selectedIds() {
  return [...document.querySelectorAll(".row-select:checked")].map((box) => box.value);
}

// Debounced, and one at a time: a slow answer from before the latest change never replaces
// a newer one.
let listTimer = null;
let listChain = Promise.resolve();
function refreshList() {
  if (!root.dataset.listUrl) return; // a page without the list (the order page)
  clearTimeout(listTimer);
  listTimer = setTimeout(() => {
    listChain = listChain.then(async () => {
      const params = listQuery();
      if (state.conversationId) params.set("active", state.conversationId);
      params.set("pages", loadedPages());
      try {
        const response = await fetch(`${root.dataset.listUrl}?${params}`, { credentials: "same-origin" });
        if (!response.ok && response.status !== 404 && response.status !== 422) return;
        swapListPane(await response.text());
      } catch {
        // Offline: the next event refreshes the list.
      }
    });
  }, 150);
}

// Replace the filters and the rows, keeping what the user was doing: an open filter menu,
// the selected rows, the focused element, the scroll position.
function swapListPane(html) {
  const fresh = htmlFragment(html);
  const checked = new Set(selectedIds());
  const focusKey = document.activeElement?.closest?.("[data-focus-key]")?.dataset.focusKey;
  const menuOpen = document.getElementById("filter-menu")?.open;
  for (const id of ["filter-nav", "conversation-list-container"]) {
    const current = document.getElementById(id);
    const replacement = fresh.getElementById(id);
    if (current && replacement) current.replaceChildren(...replacement.childNodes);
  }
  const menu = document.getElementById("filter-menu");
  if (menu && menuOpen) menu.open = true;
  for (const box of document.querySelectorAll(".row-select")) box.checked = checked.has(box.value);
  if (focusKey) document.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`)?.focus({ preventScroll: true });
  if (window.htmx) htmx.process(document.getElementById("conversation-list-container"));
  updateBulkBar();
}

// ---- Selection and actions -----------------------------------------------------------------

const bulkForm = document.getElementById("bulk-form");

function updateBulkBar() {
  if (!bulkForm) return;
  const count = selectedIds().length;
  bulkForm.hidden = count === 0;
  document.getElementById("bulk-count").textContent = `${count} selected`;
  root.classList.toggle("selecting", count > 0);
}

document.addEventListener("change", (event) => {
  if (event.target.matches(".row-select")) updateBulkBar();
});

document.getElementById("bulk-clear")?.addEventListener("click", () => {
  document.querySelectorAll(".row-select:checked").forEach((box) => (box.checked = false));
  updateBulkBar();
});

// How a conversation is filed, shown in the thread's header and its Actions menu: each menu
// button says when it applies (data-when), from the fields of a conversation state.
const CONDITIONS = {
  starred: ["starred", (s) => s.starred],
  unstarred: ["starred", (s) => !s.starred],
  unread: ["unread_count", (s) => s.unread_count > 0],
  read: ["unread_count", (s) => !(s.unread_count > 0)],
  archived: ["archived", (s) => s.archived],
  unarchived: ["archived", (s) => !s.archived],
  spam: ["spam", (s) => s.spam],
  "not-spam": ["spam", (s) => !s.spam],
};

function applyConversationState(update) {
  if (update.conversation_id !== state.conversationId) return;
  const menu = document.getElementById("thread-actions");
  if (!menu) return;
  for (const button of menu.querySelectorAll("[data-when]")) {
    const [field, holds] = CONDITIONS[button.dataset.when] || [];
    if (field && field in update) button.hidden = !holds(update);
  }
  if ("starred" in update) document.getElementById("thread-star").hidden = !update.starred;
  if (Array.isArray(update.labels)) renderThreadLabels(update.labels);
}

// Labels the page knows: id -> {name, color}, from the label choices the server rendered.
const labelCatalog = new Map();
for (const option of document.querySelectorAll("select[data-label-select] option")) {
  labelCatalog.set(Number(option.value), { name: option.textContent, color: option.dataset.color });
}

function renderThreadLabels(ids) {
  const list = document.getElementById("thread-labels");
  if (!list) return;
  list.dataset.ids = ids.join(",");
  const chips = ids
    .filter((id) => labelCatalog.has(id))
    .map((id) => {
      const chip = document.createElement("li");
      chip.className = "label-chip";
      chip.textContent = labelCatalog.get(id).name;
      chip.style.setProperty("--label-color", labelCatalog.get(id).color);
      return chip;
    });
  list.replaceChildren(...chips);
  list.hidden = chips.length === 0;
}

function updateLabelChoices(labels) {
  labelCatalog.clear();
  for (const label of labels) {
    const color = /^#[0-9a-fA-F]{6}$/.test(label.color) ? label.color : "#6b7280";
    labelCatalog.set(label.id, { name: label.name, color });
  }
  for (const select of document.querySelectorAll("select[data-label-select]")) {
    const chosen = select.value;
    const options = labels.map((label) => {
      const option = document.createElement("option");
      option.value = label.id;
      option.textContent = label.name;
      option.dataset.color = labelCatalog.get(label.id).color;
      return option;
    });
    select.replaceChildren(...options);
    if ([...select.options].some((option) => option.value === chosen)) select.value = chosen;
  }
  const list = document.getElementById("thread-labels");
  if (list) renderThreadLabels((list.dataset.ids || "").split(",").filter(Boolean).map(Number));
}

// Forms of the Actions menu and the selection bar: sent in the background, answered in JSON.
document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!form.matches("form[data-action-form]")) return;
  const submitter = event.submitter;
  if (submitter && submitter.form !== form) return; // e.g. Block, which belongs to its own form
  event.preventDefault();
  const fields = new URLSearchParams(new FormData(form, submitter));
  if (form === bulkForm && !fields.getAll("conversation_ids").length) {
    showNotice("Select at least one conversation.", { error: true });
    return;
  }
  const buttons = [...form.querySelectorAll("button")];
  buttons.forEach((button) => (button.disabled = true));
  let response;
  try {
    // getAttribute: its buttons are named "action", which shadows form.action.
    response = await postForm(form.getAttribute("action"), fields, { json: true });
  } catch {
    showNotice("Not done: the connection dropped. Try again.", { error: true });
    return;
  } finally {
    buttons.forEach((button) => (button.disabled = false));
  }
  if (!response.ok) {
    const fallback = response.status === 404 ? "That conversation is not in your inbox." : `Not done (error ${response.status}).`;
    showNotice(await refusalDetail(response, fallback), { error: true });
    return;
  }
  const result = await response.json();
  for (const conversation of result.conversations || []) applyConversationState(conversation);
  form.closest("details")?.removeAttribute("open");
  if (form === bulkForm) {
    document.querySelectorAll(".row-select:checked").forEach((box) => (box.checked = false));
    updateBulkBar();
  }
  showNotice(result.detail || "Done.");
  refreshList();
});

// An open menu closes on Escape or a click elsewhere.
document.addEventListener("click", (event) => {
  for (const menu of document.querySelectorAll("details.menu[open]")) {
    if (!menu.contains(event.target)) menu.removeAttribute("open");
  }
});
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  const menu =
    event.target.closest?.("details.menu[open], details.tool[open]") || document.querySelector("details.menu[open]");
  if (menu) {
    menu.removeAttribute("open");
    menu.querySelector("summary").focus();
  } else if (reply.bar && !reply.bar.hidden && event.target === composer?.querySelector("textarea")) {
    cancelReply();
  }
});

// ---- Typing and presence -------------------------------------------------------------------

let typingTimer = null;
function showTyping(conversationId) {
  const indicator = document.getElementById("typing-indicator");
  if (conversationId === state.conversationId && indicator) {
    indicator.hidden = false;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => (indicator.hidden = true), 6000);
  }
  const row = document.querySelector(`.conversation-row[data-conversation-id="${conversationId}"] .row-typing`);
  if (row) {
    row.hidden = false;
    setTimeout(() => (row.hidden = true), 6000);
  }
}

function hideTyping() {
  const indicator = document.getElementById("typing-indicator");
  if (indicator) indicator.hidden = true;
}

function showPresence(online) {
  const label = document.getElementById("other-presence");
  if (!label) return;
  label.textContent = online ? "Online" : "Offline";
  label.classList.toggle("online", online);
}

function startLocalClock() {
  const clock = document.getElementById("other-local-time");
  if (!clock) return;
  const zone = clock.dataset.timezone;
  let format;
  try {
    format = new Intl.DateTimeFormat([], { timeZone: zone, weekday: "short", hour: "2-digit", minute: "2-digit" });
  } catch {
    return;
  }
  const tick = () => (clock.textContent = `${format.format(new Date())} (${zone})`);
  tick();
  setInterval(tick, 30000);
}

// ---- Events --------------------------------------------------------------------------------

const handlers = {
  "message.created"(event) {
    refreshList();
    if (event.conversation_id !== state.conversationId) return;
    if (isUpdateOfThisOrder(event.message)) refreshOrderPanel();
    if (event.message.kind === "system") refreshOrderHistory();
    const id = event.message.id;
    let fetching;
    if (thread && id && id < lastMessageId()) {
      // Approved by a moderator after later messages: its place is further up. (The order page
      // shows only this order's messages.)
      const elsewhere = state.orderNumber && event.message.order?.number !== state.orderNumber;
      fetching = elsewhere ? Promise.resolve(0) : fetchOlderMessage(id);
    } else {
      fetching = fetchNewMessages();
    }
    if (event.message.sender !== state.username) {
      hideTyping();
      fetching.then(markReadIfVisible);
    }
  },
  "message.updated"(event) {
    // An edit or a deletion, by either person: re-render it, and the replies that quote it.
    refreshList();
    if (event.conversation_id !== state.conversationId || !thread) return;
    const id = event.message.id;
    refreshMessage(id);
    for (const quote of thread.querySelectorAll(`a.quote[data-quote-id="${id}"]`)) {
      refreshMessage(quote.closest("li.message").dataset.messageId);
    }
  },
  "conversation.read"(event) {
    refreshList();
    if (event.conversation_id !== state.conversationId) return;
    if (event.reader !== state.username) {
      state.otherLastRead = Math.max(state.otherLastRead, event.last_read_message_id);
      updateSeen();
    } else {
      applyConversationState({ conversation_id: event.conversation_id, unread_count: event.unread_count });
    }
  },
  "conversation.updated"(event) {
    // Filed by this user, maybe from another tab: star, archive, labels...
    refreshList();
    applyConversationState(event);
  },
  "labels.updated"(event) {
    updateLabelChoices(event.labels || []);
    refreshList();
  },
  typing(event) {
    if (event.user !== state.username) showTyping(event.conversation_id);
  },
  presence(event) {
    if (event.user_id === state.otherUserId) showPresence(event.online);
  },
};

function apply(event) {
  if (event.cursor != null) {
    if (event.cursor <= state.cursor) return; // seen already
    state.cursor = event.cursor;
  }
  const handler = handlers[event.type];
  if (handler) handler(event);
}

function receive(event) {
  if (event.cursor == null) return apply(event);
  if (state.catchingUp) {
    state.queued.push(event);
  } else if (event.cursor > state.cursor + 1) {
    state.queued.push(event); // a gap: something was lost on the way
    catchUp();
  } else {
    apply(event);
  }
}

function catchUp() {
  if (state.catchingUp) return state.catchingUp;
  let failed = true;
  state.catchingUp = (async () => {
    try {
      for (;;) {
        const response = await fetch(`/api/v1/events?since=${state.cursor}`, { credentials: "same-origin" });
        if (response.status === 410) return window.location.reload(); // too far behind: start over
        if (!response.ok) throw new Error(`events ${response.status}`);
        const page = await response.json();
        page.items.forEach(apply);
        if (page.next_cursor == null) break;
      }
      failed = false;
    } finally {
      state.catchingUp = null;
      // What came over the socket meanwhile is applied in order up to a gap. Past a gap (the
      // fetch failed, or read the log before those events were written) it waits for the next
      // fetch: applied now, it would move the cursor past events never shown.
      const queued = state.queued.sort((a, b) => a.cursor - b.cursor);
      state.queued = [];
      for (const event of queued) {
        if (event.cursor > state.cursor + 1) state.queued.push(event);
        else apply(event);
      }
      if (state.queued.length) setTimeout(() => catchUp().catch(() => {}), failed ? 2000 : 0);
    }
  })();
  return state.catchingUp;
}

// ---- Socket --------------------------------------------------------------------------------

let attempts = 0;
let pingTimer = null;

function setStatus(text) {
  if (statusLabel) statusLabel.textContent = text;
  root.dataset.connection = text;
}

function connect() {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${window.location.host}/ws/events/`);
  socket.addEventListener("open", () => {
    attempts = 0;
    setStatus("Live");
    if (state.otherUserId) socket.send(JSON.stringify({ type: "presence.watch", user_ids: [state.otherUserId] }));
    pingTimer = setInterval(() => socket.send(JSON.stringify({ type: "ping" })), 30000);
    catchUp().catch(() => {});
  });
  socket.addEventListener("message", (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    if (event.type === "hello" || event.type === "pong" || event.type === "error") return;
    receive(event);
  });
  socket.addEventListener("close", (closed) => {
    clearInterval(pingTimer);
    if (closed.code === 4401) {
      setStatus("Logged out");
      return;
    }
    setStatus("Reconnecting…");
    const delay = Math.min(30000, 500 * 2 ** attempts) * (0.5 + Math.random() / 2);
    attempts += 1;
    setTimeout(connect, delay);
  });
}

// ---- Composer: send, drafts, the Enter key ---------------------------------------------------

// Enter sends and Shift+Enter adds a line, or the other way round (the user's choice);
// Ctrl/Cmd+Enter always sends.
function wantsSend(keyEvent) {
  if (keyEvent.key !== "Enter" || keyEvent.isComposing) return false;
  if (keyEvent.ctrlKey || keyEvent.metaKey) return true;
  return state.enterSends ? !keyEvent.shiftKey : keyEvent.shiftKey;
}

function setupEnterPreference() {
  const select = document.getElementById("enter-pref");
  if (!select) return;
  const hint = document.getElementById("enter-hint");
  const show = () => {
    select.value = state.enterSends ? "1" : "0";
    hint.textContent = state.enterSends ? "Shift+Enter adds a new line" : "Shift+Enter sends";
  };
  select.addEventListener("change", async () => {
    const previous = state.enterSends;
    state.enterSends = select.value === "1";
    show();
    let response;
    try {
      response = await postForm(root.dataset.preferencesUrl, { enter_sends: select.value }, { json: true });
    } catch {
      response = null;
    }
    if (!response || !response.ok) {
      state.enterSends = previous;
      show();
      const detail = response ? await refusalDetail(response, "Not saved.") : "Not saved: the connection dropped.";
      showNotice(detail, { error: true });
      return;
    }
    showNotice((await response.json()).detail || "Saved.");
  });
}

function setupComposer() {
  if (!composer) return;
  const textarea = composer.querySelector("textarea");
  const button = composer.querySelector("button[type=submit]");
  const errorBox = document.getElementById("composer-error");
  const draftUrl = root.dataset.draftUrl;
  let pendingClientId = null;
  let lastTypingSent = 0;

  // The draft: the server keeps it (it comes back on any device); saved 800 ms after typing
  // stops, and when the page is hidden. Saves and sends go out one after the other, so a late
  // save cannot bring back the text of a message already sent.
  let savedDraft = textarea.value;
  let draftTimer = null;
  let outbox = Promise.resolve();

  function saveDraft({ keepalive = false } = {}) {
    clearTimeout(draftTimer);
    if (!draftUrl) return outbox; // the order page keeps no draft
    const text = textarea.value;
    if (text === savedDraft) return outbox;
    savedDraft = text;
    outbox = outbox.then(async () => {
      try {
        const response = await postForm(draftUrl, { text }, { json: true, keepalive });
        if (!response.ok && response.status >= 500) savedDraft = null; // try again next time
      } catch {
        savedDraft = null;
      }
    });
    return outbox;
  }

  const showError = (text) => {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  };

  async function send() {
    const body = textarea.value;
    // Uploaded files (attachments.js): their ids; with files, the text may be empty.
    const files = [...composer.querySelectorAll("input[name=attachments]")].map((input) => input.value);
    if (composer.dataset.uploading) {
      showError("Wait until the files are uploaded.");
      return;
    }
    if (!body.trim() && !files.length) {
      showError("Write something before sending.");
      return;
    }
    clearTimeout(draftTimer);
    pendingClientId = pendingClientId || newClientId();
    const fields = new URLSearchParams({
      body: body.trim() ? body : "",
      client_id: pendingClientId,
      after: lastMessageId(),
    });
    if (reply.input?.value) fields.set("reply_to", reply.input.value);
    files.forEach((id) => fields.append("attachments", id));
    button.disabled = true;
    let response;
    try {
      await outbox;
      const sending = postForm(composer.action, fields);
      outbox = sending.catch(() => {});
      response = await sending;
    } catch {
      showError("Not sent: the connection dropped. Your text is kept; press Send to try again.");
      button.disabled = false;
      return;
    }
    button.disabled = false;
    if (response.ok) {
      insertMessages(await response.text());
      savedDraft = ""; // sending cleared the draft on the server
      if (textarea.value === body) textarea.value = "";
      else saveDraft();
      pendingClientId = null;
      composer.dispatchEvent(new CustomEvent("composer:sent", { detail: { attachments: files } }));
      cancelReply();
      showError("");
      scrollToBottom();
      return;
    }
    const detail = await refusalDetail(response, `Not sent (error ${response.status}). Your text is kept.`);
    if (response.status < 500) pendingClientId = null; // refused for good: nothing was stored
    showError(detail);
  }

  composer.addEventListener("submit", (submitEvent) => {
    submitEvent.preventDefault();
    send();
  });
  textarea.addEventListener("keydown", (keyEvent) => {
    if (wantsSend(keyEvent)) {
      keyEvent.preventDefault();
      send();
    }
  });
  textarea.addEventListener("input", () => {
    clearTimeout(draftTimer);
    draftTimer = setTimeout(saveDraft, 800);
    const now = Date.now();
    if (root.dataset.typingUrl && textarea.value.trim() && now - lastTypingSent > 3000) {
      lastTypingSent = now;
      postForm(root.dataset.typingUrl).catch(() => {});
    }
  });
  window.addEventListener("pagehide", () => saveDraft({ keepalive: true }));
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") saveDraft({ keepalive: true });
  });
}

// ---- Start ---------------------------------------------------------------------------------

if (thread) {
  thread.querySelectorAll("li.message").forEach(armEditWindow);
  setInterval(closeEditWindows, 5000);
  // Opened at a message (a search result, a quote from further back): show it, else the end.
  const target =
    (window.location.hash.startsWith("#m-") && document.getElementById(window.location.hash.slice(1))) ||
    thread.querySelector("li.message.highlighted");
  if (target) {
    requestAnimationFrame(() => flashMessage(target));
  } else {
    scrollToBottom();
  }
  updateSeen();
  markReadIfVisible().then(refreshList);
  document.addEventListener("visibilitychange", markReadIfVisible);
  const newer = document.getElementById("load-newer-button");
  newer?.addEventListener("click", async () => {
    const added = await fetchNewMessages();
    if (added < 50) document.getElementById("load-newer").remove();
  });
}
setupComposer();
setupEnterPreference();
updateBulkBar();
startLocalClock();
connect();
