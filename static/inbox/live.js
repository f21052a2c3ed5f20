// The inbox page's live connection: one websocket per tab, gap-free through the event log.
//
// Every logged event carries the user's cursor. Events are applied in cursor order; a gap (or
// a reconnect) triggers GET /api/v1/events?since=<cursor>, and an event already applied is
// dropped. Typing and presence are live-only (cursor null).

const root = document.getElementById("inbox");

const state = {
  cursor: Number(root.dataset.cursor || 0),
  userId: Number(root.dataset.userId),
  username: root.dataset.username,
  conversationId: root.dataset.conversationId ? Number(root.dataset.conversationId) : null,
  otherUserId: root.dataset.otherUserId ? Number(root.dataset.otherUserId) : null,
  otherLastRead: Number(root.dataset.otherLastRead || 0),
  catchingUp: null,
  queued: [],
};

const thread = document.getElementById("thread");
const composer = document.getElementById("composer");
const statusLabel = document.getElementById("connection-state");

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
function postForm(url, fields = {}) {
  const body = new URLSearchParams(fields);
  return fetch(url, { method: "POST", body, headers: { "X-CSRFToken": csrfToken() }, credentials: "same-origin" });
}

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
  const template = document.createElement("template");
  template.innerHTML = html;
  let addedMine = false;
  for (const item of template.content.querySelectorAll("li.message")) {
    if (document.getElementById(item.id)) continue; // already shown: drop the duplicate
    thread.appendChild(item);
    if (item.dataset.mine === "1") addedMine = true;
  }
  if (window.htmx) htmx.process(thread);
  updateSeen();
  if (stick || addedMine) scrollToBottom();
}

let appendChain = Promise.resolve();
function fetchNewMessages() {
  appendChain = appendChain.then(async () => {
    const response = await fetch(`${root.dataset.messagesUrl}?after=${lastMessageId()}`, { credentials: "same-origin" });
    if (response.ok) insertMessages(await response.text());
  }).catch(() => {});
  return appendChain;
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

// ---- Conversation list ---------------------------------------------------------------------

let listTimer = null;
function refreshList() {
  clearTimeout(listTimer);
  listTimer = setTimeout(async () => {
    const params = state.conversationId ? `?active=${state.conversationId}` : "";
    try {
      const response = await fetch(root.dataset.listUrl + params, { credentials: "same-origin" });
      if (!response.ok) return;
      const container = document.getElementById("conversation-list-container");
      container.innerHTML = await response.text();
    } catch {
      // Offline: the next event refreshes the list.
    }
  }, 150);
}

// ---- Typing and presence -------------------------------------------------------------------

let typingTimer = null;
function showTyping(conversationId) {
  if (conversationId === state.conversationId) {
    const indicator = document.getElementById("typing-indicator");
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
    if (event.message.sender !== state.username) {
      hideTyping();
      fetchNewMessages().then(markReadIfVisible);
    } else {
      fetchNewMessages();
    }
  },
  "conversation.read"(event) {
    refreshList();
    if (event.conversation_id === state.conversationId && event.reader !== state.username) {
      state.otherLastRead = Math.max(state.otherLastRead, event.last_read_message_id);
      updateSeen();
    }
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
    } finally {
      state.catchingUp = null;
      const queued = state.queued.sort((a, b) => a.cursor - b.cursor);
      state.queued = [];
      queued.forEach(apply);
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

// ---- Composer ------------------------------------------------------------------------------

function setupComposer() {
  if (!composer) return;
  const textarea = composer.querySelector("textarea");
  const button = composer.querySelector("button[type=submit]");
  const errorBox = document.getElementById("composer-error");
  const draftKey = `inbox-draft:${state.userId}:${state.conversationId}`;
  let pendingClientId = null;
  let lastTypingSent = 0;

  textarea.value = localStorage.getItem(draftKey) || "";

  const showError = (text) => {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  };

  async function send() {
    const body = textarea.value;
    if (!body.trim()) {
      showError("Write something before sending.");
      return;
    }
    pendingClientId = pendingClientId || newClientId();
    button.disabled = true;
    let response;
    try {
      response = await postForm(composer.action, { body, client_id: pendingClientId, after: lastMessageId() });
    } catch {
      showError("Not sent: the connection dropped. Your text is kept; press Send to try again.");
      button.disabled = false;
      return;
    }
    button.disabled = false;
    if (response.ok) {
      insertMessages(await response.text());
      if (textarea.value === body) {
        textarea.value = "";
        localStorage.removeItem(draftKey);
      }
      pendingClientId = null;
      showError("");
      scrollToBottom();
      return;
    }
    let detail = `Not sent (error ${response.status}). Your text is kept.`;
    try {
      detail = (await response.json()).detail || detail;
    } catch {}
    if (response.status < 500) pendingClientId = null; // refused for good: nothing was stored
    showError(detail);
  }

  composer.addEventListener("submit", (submitEvent) => {
    submitEvent.preventDefault();
    send();
  });
  textarea.addEventListener("keydown", (keyEvent) => {
    if (keyEvent.key === "Enter" && !keyEvent.shiftKey && !keyEvent.isComposing) {
      keyEvent.preventDefault();
      send();
    }
  });
  textarea.addEventListener("input", () => {
    localStorage.setItem(draftKey, textarea.value);
    const now = Date.now();
    if (textarea.value.trim() && now - lastTypingSent > 3000) {
      lastTypingSent = now;
      postForm(root.dataset.typingUrl).catch(() => {});
    }
  });
}

// ---- Start ---------------------------------------------------------------------------------

if (thread) {
  scrollToBottom();
  updateSeen();
  markReadIfVisible().then(refreshList);
  document.addEventListener("visibilitychange", markReadIfVisible);
}
setupComposer();
startLocalClock();
connect();
