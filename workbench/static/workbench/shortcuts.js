// Keyboard shortcuts (the same as Open WebUI's where it has one), and the `?` sheet that lists
// them (templates/base.html#shortcuts_help).
//
// Ctrl on Linux/Windows, ⌘ on macOS ("Mod" below). Shortcuts with a modifier (and Shift+Esc)
// work everywhere, even while typing; `?` only when the focus is not in a text field. Esc (stop
// the reply) belongs to chat.js; the sheet is a modal <dialog>: the page behind it is inert, Tab
// stays inside and Esc closes it.

const isMac = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);
const help = document.getElementById("shortcuts-help");

function narrow() {
  return window.matchMedia("(max-width: 900px)").matches;
}

function typing(target) {
  return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}

function click(selector) {
  const element = document.querySelector(selector);
  if (!element || element.hidden || element.disabled) return false;
  element.click();
  return true;
}

function lastReply() {
  const replies = document.querySelectorAll("#messages article.msg.role-assistant");
  return replies.length ? replies[replies.length - 1] : null;
}

function flashStatus(text) {
  const announcer = document.getElementById("chat-announcer");
  if (announcer) announcer.textContent = text;
}

const actions = {
  "new-chat": () => {
    if (!click("[data-shortcut=new-chat]")) window.location.assign("/chat/");
  },
  "focus-composer": () => {
    const input = document.getElementById("composer-input");
    if (input) input.focus();
  },
  search: () => {
    const search = document.getElementById("chat-search");
    if (!search) { window.location.assign("/chat/"); return; }
    const layout = document.querySelector(".chat-layout");
    layout?.classList.remove("list-hidden");
    if (narrow() && layout && !layout.classList.contains("list-open")) {
      document.querySelector(".list-toggle:not(.drawer-close)")?.click(); // opens the drawer
    }
    search.focus();
    search.select();
  },
  "toggle-sidebar": () => {
    const layout = document.querySelector(".chat-layout");
    if (!layout) return;
    if (narrow()) { // a phone: the list is a drawer
      const toggle = layout.classList.contains("list-open")
        ? document.querySelector(".drawer-close") : document.querySelector(".list-toggle:not(.drawer-close)");
      toggle?.click();
      return;
    }
    const hidden = layout.classList.toggle("list-hidden");
    try { localStorage.setItem("workbench-chat-list-hidden", hidden ? "1" : ""); } catch (e) { /* ignore */ }
    flashStatus(hidden ? "Conversation list hidden." : "Conversation list shown.");
  },
  regenerate: () => {
    const reply = lastReply();
    const button = reply && reply.querySelector("[data-action=regenerate], [data-action=retry]");
    if (button) button.click();
  },
  "copy-reply": () => {
    const reply = lastReply();
    const button = reply && reply.querySelector(".msg-actions [data-action=copy]");
    if (button) button.click();
  },
  "copy-code": () => {
    const reply = lastReply();
    const button = reply && reply.querySelector(".msg-actions [data-action=copy-code]");
    if (button) button.click();
  },
  help: () => {
    if (!help || help.open) return;
    const back = document.activeElement;
    help.addEventListener("close", () => { if (back && back.focus) back.focus(); }, { once: true });
    help.showModal();
  },
};

// key (lower case) with Mod and Shift → action
const withMod = {
  "shift+o": "new-chat",
  k: "search",
  "shift+s": "toggle-sidebar",
  "shift+g": "regenerate",
  "shift+c": "copy-reply",
  "shift+;": "copy-code",
  "/": "help",
};

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.isComposing || event.altKey) return;
  const mod = isMac ? event.metaKey : event.ctrlKey;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  let action = null;
  if (mod) {
    action = withMod[`${event.shiftKey ? "shift+" : ""}${key === ":" ? ";" : key}`] || null;
  } else if (event.key === "Escape" && event.shiftKey) {
    action = "focus-composer";
  } else if (event.key === "?" && !typing(event.target) && !event.ctrlKey && !event.metaKey) {
    action = "help";
  }
  if (!action) return;
  event.preventDefault();
  actions[action]();
});

document.addEventListener("click", (event) => {
  if (event.target.closest("[data-open-shortcuts]")) actions.help();
  if (event.target.closest("[data-close-dialog]")) event.target.closest("dialog")?.close();
});

// The list stays hidden across pages once hidden.
try {
  if (localStorage.getItem("workbench-chat-list-hidden")) {
    document.querySelector(".chat-layout")?.classList.add("list-hidden");
  }
} catch (e) { /* ignore */ }

// Show the right modifier in the sheet.
document.querySelectorAll("kbd[data-mod]").forEach((kbd) => { kbd.textContent = isMac ? "⌘" : "Ctrl"; });

// A modal dialog makes the page behind it inert, but Tab from its last control would still
// leave for the browser's own toolbar: keep it cycling inside the sheet.
help?.addEventListener("keydown", (event) => {
  if (event.key !== "Tab") return;
  const focusable = [...help.querySelectorAll("button, [href], input, select, textarea, [tabindex]:not([tabindex='-1'])")]
    .filter((node) => !node.disabled && node.offsetParent !== null);
  if (!focusable.length) return;
  const first = focusable[0];
  const last = focusable[focusable.length - 1];
  if (event.shiftKey && (document.activeElement === first || !help.contains(document.activeElement))) {
    event.preventDefault();
    last.focus();
  } else if (!event.shiftKey && (document.activeElement === last || !help.contains(document.activeElement))) {
    event.preventDefault();
    first.focus();
  }
});
