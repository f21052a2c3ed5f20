// The push service worker. Served at /notifications/sw.js with "Service-Worker-Allowed: /", and
// registered with the whole site as its scope. It only shows pushes; it does not touch requests.
//
// A push's data is {"title", "body", "url"} (notifications/push.py); clicking the notification
// focuses a tab already at that url, else opens one. Only this site's urls are opened.

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

function sameSiteUrl(url) {
  try {
    const parsed = new URL(url || "/notifications/", self.location.origin);
    if (parsed.origin === self.location.origin) return parsed.href;
  } catch {
    // Not a url: fall through to the list.
  }
  return new URL("/notifications/", self.location.origin).href;
}

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { body: event.data ? event.data.text() : "" };
  }
  const title = typeof data.title === "string" && data.title ? data.title : "Marketplace";
  event.waitUntil(
    self.registration.showNotification(title, {
      body: typeof data.body === "string" ? data.body : "",
      data: { url: sameSiteUrl(data.url) },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = sameSiteUrl(event.notification.data && event.notification.data.url);
  event.waitUntil(
    (async () => {
      const tabs = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      const open = tabs.find((tab) => tab.url === url);
      if (open && "focus" in open) return open.focus();
      return self.clients.openWindow(url);
    })(),
  );
});
