// Small behaviours htmx can't express. No inline handlers anywhere (CSP forbids inline script).

function currentTheme() {
  const set = document.documentElement.dataset.theme;
  if (set) return set;
  return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

document.addEventListener("click", (event) => {
  const toggle = event.target.closest("[data-theme-toggle]");
  if (toggle) {
    const next = currentTheme() === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    try { localStorage.setItem("workbench-theme", next); } catch (e) { /* ignore */ }
    return;
  }
  const copy = event.target.closest("[data-copy]");
  if (copy) {
    const source = document.getElementById(copy.dataset.copy);
    if (source && navigator.clipboard) {
      navigator.clipboard.writeText(source.textContent.trim()).then(() => {
        const label = copy.textContent;
        copy.textContent = "Copied";
        setTimeout(() => { copy.textContent = label; }, 1500);
      });
    }
    return;
  }
  // Close open menus when clicking elsewhere.
  document.querySelectorAll("details.menu[open]").forEach((menu) => {
    if (!menu.contains(event.target)) menu.removeAttribute("open");
  });
});

// Confirmation for destructive buttons: <button data-confirm="Delete this?">. In the capture
// phase, so it runs before htmx's own submit handler: cancelling stops an htmx form too.
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  const message = (button && button.dataset.confirm) || event.target.dataset.confirm;
  if (message && !window.confirm(message)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    document.querySelectorAll("details.menu[open]").forEach((menu) => menu.removeAttribute("open"));
  }
});

// <textarea data-enter-submits>: Enter sends the form, Shift+Enter adds a line.
document.addEventListener("keydown", (event) => {
  const area = event.target.closest && event.target.closest("textarea[data-enter-submits]");
  if (area && event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    if (area.value.trim()) area.form.requestSubmit();
  }
});

// Phone: the "Menu" button opens the navigation; the "Conversations" button opens the
// conversation list as a drawer. Both say whether they are open (aria-expanded).
function setOpen(button, open) {
  button.setAttribute("aria-expanded", open ? "true" : "false");
}

document.addEventListener("click", (event) => {
  const navToggle = event.target.closest("[data-nav-toggle]");
  if (navToggle) {
    const sidebar = navToggle.closest(".sidebar");
    const open = !sidebar.classList.contains("nav-open");
    sidebar.classList.toggle("nav-open", open);
    setOpen(navToggle, open);
    return;
  }
  const listToggle = event.target.closest("[data-list-toggle]");
  if (listToggle) {
    const layout = document.querySelector(".chat-layout");
    const open = !layout.classList.contains("list-open");
    layout.classList.toggle("list-open", open);
    document.querySelectorAll("[data-list-toggle]").forEach((b) => setOpen(b, open));
    if (open) document.getElementById("chat-search")?.focus();
    else document.querySelector(".list-toggle:not(.drawer-close)")?.focus();
    return;
  }
  const dismiss = event.target.closest("[data-dismiss]");
  if (dismiss) {
    const item = dismiss.closest("li");
    const list = item.parentElement;
    item.remove();
    if (!list.children.length) list.remove();
  }
});

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  const layout = document.querySelector(".chat-layout.list-open");
  if (layout) {
    layout.classList.remove("list-open");
    document.querySelectorAll("[data-list-toggle]").forEach((b) => setOpen(b, false));
  }
});

// Flash messages on the wide (chat) layout float over the page instead of pushing it down:
// each gets a close button, and good news goes away by itself. htmx list actions bring their
// messages along (#flash, swapped out of band).
function decorateFlash() {
  document.querySelectorAll("main.wide #flash .messages li:not([data-decorated])").forEach((item) => {
    item.dataset.decorated = "";
    const close = document.createElement("button");
    close.type = "button";
    close.className = "flash-close";
    close.dataset.dismiss = "";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    item.append(close);
    if (!item.classList.contains("error") && !item.classList.contains("warning")) {
      setTimeout(() => close.click(), 8000);
    }
  });
}
decorateFlash();
document.addEventListener("htmx:afterSettle", decorateFlash);

// The conversation list: "Select" shows the checkboxes and the bulk actions.
document.addEventListener("click", (event) => {
  const toggle = event.target.closest("[data-select-toggle]");
  if (toggle) {
    const list = toggle.closest("#conversation-list");
    const on = !list.classList.contains("selecting");
    list.classList.toggle("selecting", on);
    toggle.setAttribute("aria-pressed", on ? "true" : "false");
    toggle.textContent = on ? "Done" : "Select";
    if (!on) list.querySelectorAll("input[name=conversation_id]").forEach((box) => { box.checked = false; });
    return;
  }
  // Code blocks outside a live chat (a shared conversation): Copy copies the code.
  const copyCode = event.target.closest("[data-copy-code]");
  if (copyCode && !copyCode.closest("#messages")) {
    const pre = copyCode.closest(".code-block")?.querySelector("pre");
    if (pre && navigator.clipboard) navigator.clipboard.writeText(pre.innerText);
    copyCode.textContent = "Copied";
    setTimeout(() => { copyCode.textContent = "Copy"; }, 1500);
  }
});

// The new-chat page: the model picker offers the models of the owner chosen above it (a team
// chat runs on the team's credentials, a personal one on yours).
document.addEventListener("change", (event) => {
  if (event.target.name !== "owner_team") return;
  const picker = event.target.form && event.target.form.querySelector("[data-owner-picker]");
  if (!picker) return;
  let first = null;
  let start = null;
  picker.querySelectorAll("optgroup").forEach((group) => {
    const mine = group.dataset.owner === event.target.value;
    group.hidden = !mine;
    group.disabled = !mine;
    if (mine && !first) first = group.querySelector("option");
    if (mine && !start) start = group.querySelector("option[data-start]");
  });
  const current = picker.selectedOptions[0];
  if (!current || current.parentElement.disabled) {
    // The owner's start: its default, else the model last used, else the first.
    if (start || first) (start || first).selected = true;
  }
  picker.dispatchEvent(new Event("picker:sync"));
});

// A form marked data-swap-errors shows its 400 answer (the fragment that names the bad input)
// in place: htmx swaps only 2xx answers by default, which would leave the old results standing.
document.addEventListener("htmx:beforeSwap", (event) => {
  const source = event.detail.requestConfig && event.detail.requestConfig.elt;
  if (event.detail.xhr.status === 400 && source && source.closest && source.closest("[data-swap-errors]")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
