// The full list of notifications (/notifications/): "Load more" becomes infinite scroll, "Mark
// read" happens in the background, and rows follow the bell's live events (static/notifications/
// bell.js dispatches them on the document as "notifications:event").
//
// Without script the page works as it is: "Load more" is a link to ?cursor=..., the forms post.

const list = document.getElementById("notification-list");

if (list) {
  const csrfToken = () => {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    return document.querySelector("input[name=csrfmiddlewaretoken]")?.value || "";
  };

  const showRead = (row) => {
    row.classList.remove("unread");
    row.querySelectorAll(".unread-dot, .notification-meta .visually-hidden, form[data-mark-read]").forEach((el) =>
      el.remove(),
    );
  };

  // ---- Load more, then infinite scroll ------------------------------------------------------

  let loading = false;
  let observer = null;

  const loadMore = async () => {
    const holder = document.getElementById("notifications-load-more");
    const link = holder?.querySelector("a[data-load-more]");
    if (!link || loading) return;
    loading = true;
    link.textContent = "Loading…";
    link.setAttribute("aria-disabled", "true");
    try {
      const response = await fetch(link.href, { credentials: "same-origin", headers: { "HX-Request": "true" } });
      if (!response.ok) throw new Error(`notifications ${response.status}`);
      const template = document.createElement("template");
      template.innerHTML = await response.text(); // server-rendered: user text in it is escaped
      const fresh = [...template.content.children].filter((row) => !(row.id && document.getElementById(row.id)));
      observer?.unobserve(holder);
      holder.replaceWith(...fresh);
      const next = document.getElementById("notifications-load-more");
      if (next) observer?.observe(next);
    } catch {
      link.textContent = "Could not load more. Try again";
      link.removeAttribute("aria-disabled");
    } finally {
      loading = false;
    }
  };

  list.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-load-more]");
    if (!link || event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    loadMore();
  });

  if ("IntersectionObserver" in window) {
    observer = new IntersectionObserver((entries) => entries.some((entry) => entry.isIntersecting) && loadMore(), {
      rootMargin: "200px 0px",
    });
  }
  const first = document.getElementById("notifications-load-more");
  if (first) observer?.observe(first);

  // ---- Mark read in the background ----------------------------------------------------------

  list.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!form.matches("form[data-mark-read]")) return;
    event.preventDefault();
    const row = form.closest("li");
    form.querySelector("button").disabled = true;
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
        credentials: "same-origin",
      });
      if (response.ok) {
        showRead(row);
        return;
      }
    } catch {
      // Offline: post the form the ordinary way below.
    }
    form.submit();
  });

  // ---- Live --------------------------------------------------------------------------------

  document.addEventListener("notifications:event", ({ detail: event }) => {
    if (event.type === "notification.read") {
      for (const id of event.ids || []) {
        const row = document.getElementById(`notification-${Number(id)}`);
        if (row) showRead(row);
      }
    } else if (event.type === "notification.created") {
      const notice = document.getElementById("notifications-new");
      if (notice) notice.hidden = false;
    }
  });
}
