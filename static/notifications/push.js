// "Enable push in this browser" on the notification settings page: register the service worker
// (served at /notifications/sw.js with the whole site as its scope), subscribe with this server's
// VAPID public key, and hand the subscription to the server. "Turn off" undoes both.

const controls = document.getElementById("push-controls");

if (controls?.dataset.vapidKey) {
  const enable = document.getElementById("push-enable");
  const disable = document.getElementById("push-disable");
  const status = document.getElementById("push-status");

  const say = (text) => {
    status.textContent = text;
  };

  const show = (subscribed) => {
    enable.hidden = subscribed;
    disable.hidden = !subscribed;
  };

  const csrfToken = () => {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    return document.querySelector("input[name=csrfmiddlewaretoken]")?.value || "";
  };

  // The VAPID key is URL-safe base64 without padding; the Push API wants its bytes.
  const keyBytes = (base64) => {
    const padded = (base64 + "=".repeat((4 - (base64.length % 4)) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    return Uint8Array.from(atob(padded), (char) => char.charCodeAt(0));
  };

  const post = (url, data) =>
    fetch(url, {
      method: "POST",
      body: JSON.stringify(data),
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
      credentials: "same-origin",
    });

  const detailOf = async (response, fallback) => {
    try {
      const body = await response.json();
      if (body && typeof body.detail === "string" && body.detail) return body.detail;
    } catch {
      // Not JSON: say it plainly.
    }
    return fallback;
  };

  const currentSubscription = async () => {
    const registration = await navigator.serviceWorker.getRegistration("/");
    return registration ? registration.pushManager.getSubscription() : null;
  };

  const supported = window.isSecureContext && "serviceWorker" in navigator && "PushManager" in window;

  if (!supported) {
    enable.hidden = true;
    say("This browser cannot receive push notifications here (it needs a secure, https connection).");
  } else {
    currentSubscription()
      .then((subscription) => show(Boolean(subscription)))
      .catch(() => {});

    enable.addEventListener("click", async () => {
      enable.disabled = true;
      say("");
      try {
        const permission = await Notification.requestPermission();
        if (permission !== "granted") {
          say("Notifications are blocked for this site: allow them in your browser's site settings, then try again.");
          return;
        }
        const registration = await navigator.serviceWorker.register(controls.dataset.workerUrl, { scope: "/" });
        await navigator.serviceWorker.ready;
        const subscription =
          (await registration.pushManager.getSubscription()) ||
          (await registration.pushManager.subscribe({
            userVisibleOnly: true,
            applicationServerKey: keyBytes(controls.dataset.vapidKey),
          }));
        const response = await post(controls.dataset.subscribeUrl, subscription.toJSON());
        if (!response.ok) {
          await subscription.unsubscribe().catch(() => {});
          say(await detailOf(response, `Push was not turned on (error ${response.status}).`));
          return;
        }
        show(true);
        say(await detailOf(response, "Push notifications are on in this browser."));
      } catch (error) {
        say(
          error?.name === "NotAllowedError"
            ? "Notifications are blocked for this site: allow them in your browser's site settings, then try again."
            : "Push could not be turned on: this browser's push service did not answer. Try again later.",
        );
      } finally {
        enable.disabled = false;
      }
    });

    disable.addEventListener("click", async () => {
      disable.disabled = true;
      try {
        const subscription = await currentSubscription();
        if (subscription) {
          await post(controls.dataset.unsubscribeUrl, { endpoint: subscription.endpoint });
          await subscription.unsubscribe();
        }
        show(false);
        say("Push notifications are off in this browser.");
      } catch {
        say("Push could not be turned off. Try again.");
      } finally {
        disable.disabled = false;
      }
    });
  }
}
