// Quick responses in the composer: a picker (button, Alt+Q, or "/" in an empty message) lists
// the seller's saved replies, with placeholders already filled by the server for this
// conversation, and inserts the chosen one where the caret is. Titles and texts reach the page
// as JSON (json_script) and are only ever set as textContent or a textarea's value.

const data = document.getElementById("quick-responses-data");
const textarea = document.getElementById("composer-body");
const button = document.getElementById("quick-responses-button");
const panel = document.getElementById("quick-responses-panel");

if (data && textarea && button && panel) {
  const responses = JSON.parse(data.textContent);
  const filter = panel.querySelector("input");
  const list = panel.querySelector("[role=listbox]");
  let shown = [];
  let active = 0;

  function render() {
    const query = filter.value.trim().toLowerCase();
    shown = responses.filter(
      (response) => !query || response.title.toLowerCase().includes(query) || response.text.toLowerCase().includes(query),
    );
    active = Math.min(active, Math.max(shown.length - 1, 0));
    list.replaceChildren(
      ...shown.map((response, index) => {
        const option = document.createElement("li");
        option.id = `quick-response-option-${response.id}`;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", String(index === active));
        option.className = "quick-response-option";
        const title = document.createElement("strong");
        title.textContent = response.title;
        const text = document.createElement("span");
        text.className = "muted";
        text.textContent = response.text.length > 90 ? `${response.text.slice(0, 90)}…` : response.text;
        option.append(title, " ", text);
        option.addEventListener("mousedown", (event) => event.preventDefault()); // keep the caret
        option.addEventListener("click", () => insert(response));
        return option;
      }),
    );
    if (!shown.length) {
      const empty = document.createElement("li");
      empty.className = "muted";
      empty.textContent = "No quick response matches.";
      list.append(empty);
    }
    filter.setAttribute("aria-activedescendant", shown.length ? `quick-response-option-${shown[active].id}` : "");
    list.querySelector("[aria-selected=true]")?.scrollIntoView({ block: "nearest" });
  }

  function open() {
    panel.hidden = false;
    button.setAttribute("aria-expanded", "true");
    filter.value = "";
    active = 0;
    render();
    filter.focus();
  }

  function close({ refocus = true } = {}) {
    panel.hidden = true;
    button.setAttribute("aria-expanded", "false");
    if (refocus) textarea.focus();
  }

  function insert(response) {
    const start = textarea.selectionStart ?? textarea.value.length;
    const end = textarea.selectionEnd ?? start;
    textarea.value = textarea.value.slice(0, start) + response.text + textarea.value.slice(end);
    close();
    const caret = start + response.text.length;
    textarea.setSelectionRange(caret, caret);
    textarea.dispatchEvent(new Event("input", { bubbles: true })); // the draft is saved as for typing
  }

  button.addEventListener("click", () => (panel.hidden ? open() : close()));
  textarea.addEventListener("keydown", (event) => {
    const slashInEmpty = event.key === "/" && !textarea.value && !event.ctrlKey && !event.metaKey && !event.altKey;
    const altQ = event.altKey && !event.ctrlKey && !event.metaKey && event.code === "KeyQ";
    if (slashInEmpty || altQ) {
      event.preventDefault();
      open();
    }
  });
  filter.addEventListener("input", () => {
    active = 0;
    render();
  });
  panel.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!shown.length) return;
      active = (active + (event.key === "ArrowDown" ? 1 : shown.length - 1)) % shown.length;
      render();
    } else if (event.key === "Enter") {
      event.preventDefault();
      if (shown.length) insert(shown[active]);
    } else if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation(); // the page's own Escape handling (menus, replies) is not for this
      close();
    }
  });
  document.addEventListener("click", (event) => {
    if (!panel.hidden && !panel.contains(event.target) && event.target !== button) close({ refocus: false });
  });
}
