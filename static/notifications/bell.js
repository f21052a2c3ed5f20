// The bell in the site header: the unread count and the latest notifications, kept live.
//
// Live updates come from the tab's one websocket, /ws/events/. The inbox and order pages open it
// in static/inbox/live.js; this module runs before that one (it is earlier in the page), notices
// a socket to /ws/events/ being constructed and listens to it too, so a tab never holds two. On
// every other page nobody opens one, and the bell opens its own once the page's scripts ran.
//
// The bell does not replay the event log: each notification event carries the unread count, and
// the dropdown is re-fetched from the server after every notification event and every
// (re)connection, which also covers whatever happened while the socket was down. User text only
// reaches the page as HTML the server escaped.

const EVENTS_PATH = "/ws/events/";
const CLOSE_UNAUTHENTICATED = 4401;
const STALE_AFTER_MS = 30_000; // reopening the dropdown later re-fetches it (relative times)

const bell = document.getElementById("notification-bell");

if (bell) {
  const summary = bell.querySelector("summary");
  const badge = document.getElementById("notification-count");
  const items = document.getElementById("notification-bell-items");
  const readAllForm = bell.querySelector("form[data-bell-read-all]");
  const errorBox = bell.querySelector(".bell-error");

  const state = { count: Number(badge.textContent) || 0, cursor: 0, loadedAt: 0 };

  // ---- Showing ---------------------------------------------------------------------------

  const showCount = (count) => {
    state.count = Math.max(0, Number(count) || 0);
    badge.textContent = String(state.count);
    badge.hidden = state.count === 0;
    summary.setAttribute("aria-label", state.count ? `Notifications, ${state.count} unread` : "Notifications");
    if (readAllForm) readAllForm.hidden = state.count === 0;
  };

  const showError = (text) => {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  };

  const csrfToken = () => {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    return bell.querySelector("input[name=csrfmiddlewaretoken]")?.value || "";
  };

  // ---- The dropdown's list, from the server (one fetch at a time; a request made while one is
  // on its way runs once after it, so the last answer is never older than the last event) -------

  let inFlight = null;
  let again = false;

  const load = async () => {
    const response = await fetch(bell.dataset.itemsUrl, {
      credentials: "same-origin",
      headers: { Accept: "text/html" },
    });
    if (response.redirected || !response.ok) return; // logged out (sent to the login page), or down
    const template = document.createElement("template");
    template.innerHTML = await response.text(); // server-rendered: user text in it is escaped
    const fresh = template.content.querySelector(".bell-items-inner");
    if (!fresh) return;
    items.replaceChildren(fresh);
    showCount(fresh.dataset.unreadCount);
    state.loadedAt = Date.now();
  };

  const refresh = () => {
    if (inFlight) {
      again = true;
      return inFlight;
    }
    inFlight = load()
      .catch(() => {}) // offline: the next event or reconnection tries again
      .finally(() => {
        inFlight = null;
        if (again) {
          again = false;
          refresh();
        }
      });
    return inFlight;
  };

  let refreshTimer = null;
  const refreshSoon = () => {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 100); // a burst of events costs one fetch
  };

  // ---- Events ------------------------------------------------------------------------------

  const receive = (event) => {
    if (event.type !== "notification.created" && event.type !== "notification.read") return;
    // The count an event carries is the count when it was written: never let an older one win.
    if (event.cursor == null || event.cursor > state.cursor) {
      if (event.cursor != null) state.cursor = event.cursor;
      if (typeof event.unread_count === "number") showCount(event.unread_count);
    }
    if (event.type === "notification.created") {
      bell.classList.remove("ringing");
      void bell.offsetWidth; // restart the animation
      bell.classList.add("ringing");
    }
    refreshSoon();
    // The full list page (static/notifications/list.js) follows along.
    document.dispatchEvent(new CustomEvent("notifications:event", { detail: event }));
  };

  const onFrame = (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    if (event && typeof event.type === "string") receive(event);
  };

  const setConnection = (value) => {
    bell.dataset.connection = value;
  };

  // Listen to a socket to /ws/events/, whoever opened it.
  const openSockets = new Set();
  const follow = (socket) => {
    socket.addEventListener("message", onFrame);
    socket.addEventListener("open", () => {
      openSockets.add(socket);
      setConnection("live");
      refresh(); // whatever happened before this socket was open
    });
    socket.addEventListener("close", (closed) => {
      openSockets.delete(socket);
      if (!openSockets.size) setConnection(closed.code === CLOSE_UNAUTHENTICATED ? "logged-out" : "offline");
    });
  };

  // ---- Sharing the page's socket -----------------------------------------------------------

  const NativeWebSocket = window.WebSocket;
  let shared = 0;

  const isEventsSocket = (url) => {
    try {
      const parsed = new URL(url, window.location.href);
      return parsed.host === window.location.host && parsed.pathname === EVENTS_PATH;
    } catch {
      return false;
    }
  };

  // Sockets the page's own script opens to /ws/events/ (now and on every reconnection) are
  // followed; any other socket is left alone.
  window.WebSocket = class extends NativeWebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      if (isEventsSocket(this.url)) {
        shared += 1;
        follow(this);
      }
    }
  };

  // ---- Or a socket of its own ----------------------------------------------------------------

  let attempts = 0;

  const connect = () => {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const socket = new NativeWebSocket(`${scheme}://${window.location.host}${EVENTS_PATH}`);
    let pingTimer = null;
    setConnection("connecting");
    follow(socket);
    socket.addEventListener("open", () => {
      attempts = 0;
      pingTimer = setInterval(() => socket.send(JSON.stringify({ type: "ping" })), 30000);
    });
    socket.addEventListener("close", (closed) => {
      clearInterval(pingTimer);
      if (closed.code === CLOSE_UNAUTHENTICATED) return; // logged out: nothing to listen to
      const delay = Math.min(30000, 500 * 2 ** attempts) * (0.5 + Math.random() / 2);
      attempts += 1;
      setTimeout(connect, delay);
    });
  };

  // Module scripts run in page order before DOMContentLoaded: by then the page's script has
  // opened its socket, if it has one.
  const startOwnSocketIfNone = () => {
    if (!shared) connect();
  };
  if (document.readyState === "complete") startOwnSocketIfNone();
  else document.addEventListener("DOMContentLoaded", startOwnSocketIfNone, { once: true });

  // ---- The dropdown ----------------------------------------------------------------------------

  bell.addEventListener("toggle", () => {
    if (!bell.open) return;
    showError("");
    if (Date.now() - state.loadedAt > STALE_AFTER_MS) refresh();
  });

  // It closes on Escape or a click elsewhere.
  document.addEventListener("click", (event) => {
    if (bell.open && !bell.contains(event.target)) bell.open = false;
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && bell.open) {
      bell.open = false;
      summary.focus();
    }
  });

  // "Mark all as read" in the background (without script, the form posts and comes back).
  readAllForm?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = readAllForm.querySelector("button");
    button.disabled = true;
    let response;
    try {
      response = await fetch(readAllForm.action, {
        method: "POST",
        body: new URLSearchParams(new FormData(readAllForm)),
        headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
        credentials: "same-origin",
      });
    } catch {
      showError("Not done: the connection dropped. Try again.");
      return;
    } finally {
      button.disabled = false;
    }
    if (!response.ok) {
      showError(`Not done (error ${response.status}).`);
      return;
    }
    const result = await response.json();
    showCount(result.unread_count);
    refresh();
  });
}
