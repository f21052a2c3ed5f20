// The composer's files (inbox and order pages): "Attach files" uploads each chosen file at once,
// with a progress bar, a remove (×) button and the server's reason when it is refused. A ready
// file adds a hidden `attachments` input (its upload id) to the composer form; live.js posts
// those with the message, and says "composer:sent" (with the ids it sent) once it is stored.
//
// Every file goes in parts (inbox/views.py upload_context): POST data-upload-url starts a
// multipart upload; its parts go to the URLs the server signs (a bucket's presigned URLs, or
// this server's own for the local store), 4 at a time, each PUT to a URL signed just before (so
// a retry gets a fresh one), 3 attempts per part with a growing pause: a dropped connection
// costs one part, not the file. Then POST <uploads-base><id>/complete. DELETE
// <uploads-base><id> drops an upload. A bucket's CORS rules must allow the PUT from this site
// and expose the ETag header.
//
// File names and the server's reasons reach the page through textContent only.

const composer = document.getElementById("composer");
const box = document.getElementById("composer-files");

const PARALLEL_PARTS = 4;
const PART_ATTEMPTS = 3;
const RETRY_PAUSE_MS = 500;

class Refusal extends Error {} // the server said no (4xx): trying again will not help
class Cancelled extends Error {} // the user removed the file

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  if (match) return decodeURIComponent(match[1]);
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

function sizeText(bytes) {
  const units = ["bytes", "KB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit ? `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}` : `${bytes} bytes`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The reason in a refusal's {"error", "detail"} JSON, else a plain sentence.
function detailOf(text, status) {
  try {
    const body = JSON.parse(text);
    if (body && typeof body.detail === "string" && body.detail) return body.detail;
  } catch {
    // Not JSON (a proxy's error page): say it plainly.
  }
  return `Not uploaded (error ${status}).`;
}

if (composer && box) {
  const uploadUrl = composer.dataset.uploadUrl;
  const uploadsBase = composer.dataset.uploadsBase;
  const maxFiles = Number(composer.dataset.uploadMaxFiles || 10);
  const maxBytes = Number(composer.dataset.uploadMaxBytes || Infinity);
  const input = document.getElementById("composer-file-input");
  const list = document.getElementById("composer-file-list");
  const sendButton = composer.querySelector("button[type=submit]");
  const items = new Set();

  box.hidden = false;

  // The Send button waits while a file is on its way (live.js refuses a send meanwhile too).
  function updateSending() {
    const uploading = [...items].some((item) => item.state === "uploading");
    if (uploading) composer.dataset.uploading = "1";
    else delete composer.dataset.uploading;
    sendButton.disabled = uploading;
  }

  function setState(item, state, text) {
    item.state = state;
    item.li.dataset.state = state;
    item.status.textContent = text;
    updateSending();
  }

  function showProgress(item, loaded) {
    const total = item.file.size || 1;
    item.progress.value = Math.min(loaded, total);
    item.status.textContent = `Uploading… ${Math.floor((100 * Math.min(loaded, total)) / total)}%`;
  }

  function fail(item, detail) {
    if (item.state === "removed") return;
    item.error.textContent = detail;
    item.error.hidden = false;
    item.progress.hidden = true;
    setState(item, "failed", "Not uploaded");
  }

  function ready(item, attachment) {
    item.id = attachment.id;
    if (item.state === "removed") {
      forget(item.id);
      return;
    }
    item.progress.value = item.progress.max;
    const hidden = document.createElement("input");
    hidden.type = "hidden";
    hidden.name = "attachments";
    hidden.value = String(attachment.id);
    item.li.append(hidden);
    setState(item, "ready", "Ready");
  }

  // An XMLHttpRequest PUT (fetch cannot report upload progress). Resolves with the response;
  // rejects on a dropped connection, or with Cancelled once the file is removed.
  function put(item, url, body, headers, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      const cancel = () => xhr.abort();
      item.cancels.add(cancel);
      xhr.open("PUT", url);
      Object.entries(headers).forEach(([name, value]) => xhr.setRequestHeader(name, value));
      xhr.upload.onprogress = (event) => onProgress(event.loaded);
      xhr.onload = () => {
        item.cancels.delete(cancel);
        resolve(xhr);
      };
      xhr.onerror = () => {
        item.cancels.delete(cancel);
        reject(new Error("The connection dropped."));
      };
      xhr.onabort = () => {
        item.cancels.delete(cancel);
        reject(new Cancelled());
      };
      xhr.send(body);
    });
  }

  // A JSON call to the site's API: the answer, or Refusal (4xx) / Error (connection, 5xx).
  async function api(item, method, url, payload) {
    const controller = new AbortController();
    const cancel = () => controller.abort();
    item?.cancels.add(cancel);
    let response;
    try {
      response = await fetch(url, {
        method,
        headers: { "X-CSRFToken": csrfToken(), "Content-Type": "application/json", Accept: "application/json" },
        body: payload === undefined ? undefined : JSON.stringify(payload),
        credentials: "same-origin",
        signal: controller.signal,
      });
    } catch {
      throw controller.signal.aborted ? new Cancelled() : new Error("The connection dropped.");
    } finally {
      item?.cancels.delete(cancel);
    }
    if (response.ok) return response.status === 204 ? null : response.json();
    const detail = detailOf(await response.text(), response.status);
    throw response.status < 500 ? new Refusal(detail) : new Error(detail);
  }

  // Up to PART_ATTEMPTS tries of `attempt`, pausing longer each time; a refusal, a removal or
  // another part's failure ends it at once.
  async function withRetries(item, attempt) {
    for (let tries = 1; ; tries += 1) {
      if (item.state !== "uploading") throw new Cancelled();
      try {
        return await attempt();
      } catch (error) {
        if (error instanceof Refusal || error instanceof Cancelled || tries >= PART_ATTEMPTS) throw error;
        await sleep(RETRY_PAUSE_MS * 2 ** (tries - 1));
      }
    }
  }

  async function partsUpload(item) {
    const { file } = item;
    // Not cancelled by a removal: its answer names the upload to drop.
    const started = await api(null, "POST", uploadUrl, {
      name: file.name,
      size: file.size,
      content_type: file.type || "",
    });
    item.id = started.attachment_id;
    if (item.state === "removed") {
      forget(item.id);
      throw new Cancelled();
    }
    const { part_size: partSize, part_count: partCount } = started;
    const base = `${uploadsBase}${item.id}`;
    const loaded = new Array(partCount + 1).fill(0);
    const etags = [];
    const shown = () => showProgress(item, loaded.reduce((sum, bytes) => sum + bytes, 0));

    const sendPart = (number) =>
      withRetries(item, async () => {
        loaded[number] = 0;
        shown();
        const { urls } = await api(item, "POST", `${base}/parts`, { part_numbers: [number] });
        const slice = file.slice((number - 1) * partSize, Math.min(number * partSize, file.size));
        const xhr = await put(item, urls[number], slice, {}, (bytes) => {
          loaded[number] = bytes;
          shown();
        });
        if (xhr.status < 200 || xhr.status >= 300) {
          throw new Error(`The bucket refused part ${number} (error ${xhr.status}).`);
        }
        const etag = xhr.getResponseHeader("ETag");
        if (!etag) throw new Refusal("The bucket does not expose the ETag header (CORS): the upload cannot finish.");
        loaded[number] = slice.size;
        shown();
        return etag;
      });

    let next = 1;
    const worker = async () => {
      while (next <= partCount && item.state === "uploading") {
        const number = next;
        next += 1;
        etags.push({ part_number: number, etag: await sendPart(number) });
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_PARTS, partCount) }, worker));
    etags.sort((a, b) => a.part_number - b.part_number);
    return withRetries(item, () => api(item, "POST", `${base}/complete`, { parts: etags }));
  }

  async function upload(item) {
    try {
      ready(item, await partsUpload(item));
    } catch (error) {
      if (error instanceof Cancelled || item.state === "removed") return;
      fail(item, error instanceof Refusal ? error.message : `Not uploaded: ${error.message} Remove it and try again.`);
      item.cancels.forEach((cancel) => cancel()); // the other parts still on their way
      if (item.id) forget(item.id); // what the store kept of it
    }
  }

  // Drop an upload on the server (a started multipart upload, or a ready file never sent).
  function forget(id) {
    api(null, "DELETE", `${uploadsBase}${id}`).catch(() => {}); // unsent files are purged anyway
  }

  function remove(item) {
    const { state } = item;
    item.state = "removed";
    item.cancels.forEach((cancel) => cancel());
    if (item.id && (state === "ready" || state === "uploading")) forget(item.id);
    items.delete(item);
    item.li.remove();
    updateSending();
    input.focus();
  }

  function add(file) {
    const li = document.createElement("li");
    li.className = "file-item";
    const name = document.createElement("span");
    name.className = "file-name";
    name.textContent = file.name;
    const size = document.createElement("span");
    size.className = "file-size muted";
    size.textContent = sizeText(file.size);
    const progress = document.createElement("progress");
    progress.max = file.size || 1;
    progress.value = 0;
    progress.setAttribute("aria-label", `Upload of ${file.name}`);
    const status = document.createElement("span");
    status.className = "file-status muted";
    const removeButton = document.createElement("button");
    removeButton.type = "button";
    removeButton.className = "icon-button file-remove";
    removeButton.textContent = "×";
    removeButton.setAttribute("aria-label", `Remove ${file.name}`);
    removeButton.title = "Remove";
    const error = document.createElement("p");
    error.className = "form-error file-error";
    error.setAttribute("role", "alert");
    error.hidden = true;
    li.append(name, " ", size, " ", progress, " ", status, removeButton, error);
    list.append(li);

    const kept = [...items].filter((other) => other.state !== "failed").length;
    const item = { file, li, progress, status, error, id: null, state: "uploading", cancels: new Set() };
    items.add(item);
    removeButton.addEventListener("click", () => remove(item));
    if (kept >= maxFiles) {
      fail(item, `A message carries at most ${maxFiles} files.`);
    } else if (file.size > maxBytes) {
      fail(item, `A file is at most ${sizeText(maxBytes)}; this one has ${sizeText(file.size)}.`);
    } else {
      setState(item, "uploading", "Uploading…");
      upload(item);
    }
  }

  input.addEventListener("change", () => {
    [...input.files].forEach(add);
    input.value = ""; // the same file can be chosen again
  });

  // Sent with a message: the files are in the thread now, out of the composer.
  composer.addEventListener("composer:sent", (event) => {
    const sent = new Set((event.detail?.attachments || []).map(String));
    items.forEach((item) => {
      if (item.id !== null && sent.has(String(item.id))) {
        items.delete(item);
        item.li.remove();
      }
    });
    updateSending();
  });
}
