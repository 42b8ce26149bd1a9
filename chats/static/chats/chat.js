// The conversation page: one websocket, frames in, actions out.
//
// Only the streaming message changes while tokens arrive: the server sends its Markdown rendered
// so far with the text (streams.js swaps the growing last block), and the final frame carries the
// authoritative rendering. The history is never re-rendered per token, so long conversations stay
// smooth.

import { sumUsd } from "../billing/money.js";
import { Streams } from "./streams.js";

const chat = document.getElementById("chat");

if (chat) {
  const messages = document.getElementById("messages");
  const composer = document.getElementById("composer");
  const input = document.getElementById("composer-input");
  const sendButton = document.getElementById("composer-send");
  const stopButton = document.getElementById("composer-stop");
  const errorBox = document.getElementById("composer-error");
  const connection = document.getElementById("connection");
  const reconnectNow = document.getElementById("reconnect-now");
  const jump = document.getElementById("jump-latest");
  const canUse = chat.dataset.canUse === "1";
  const canWrite = chat.dataset.canWrite === "1";
  const streams = new Streams(messages);

  let socket = null;
  let everConnected = false;
  let refCounter = 0;
  const pending = new Map(); // ref → what we asked for
  const stopping = new Set(); // replies we asked to stop (the composer is usable at once)
  let catchingUp = false;

  chat.classList.toggle("no-use", !canUse);
  chat.classList.toggle("no-write", !canWrite);

  // --- Helpers -------------------------------------------------------------------------------

  const article = (id) => document.getElementById(`message-${id}`);

  function nearBottom() {
    return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 160;
  }

  // Following the newest message is the reader's state, not the page's: a reply that grows by a
  // screenful in one frame must not stop the following (measuring nearBottom() after the growth
  // would), only the reader scrolling away does — scroll events come from scrolling, not growth.
  let following = true;
  function scrollDown(force) {
    if (force || following) {
      window.scrollTo({ top: document.documentElement.scrollHeight });
      following = true;
    }
    updateJump();
  }
  window.addEventListener("scroll", () => { following = nearBottom(); }, { passive: true });

  // "Jump to latest" shows while the reader is scrolled up away from the newest message.
  let jumpQueued = false;
  function updateJump() {
    if (!jump || jumpQueued) return;
    jumpQueued = true;
    requestAnimationFrame(() => {
      jumpQueued = false;
      jump.hidden = nearBottom();
    });
  }

  // The stored Markdown of a message (Edit and Copy use it, never the rendering).
  function rawText(el) {
    const live = streams.text(el.dataset.id);
    if (live !== null && el.dataset.status === "streaming") return live;
    const raw = el.querySelector("template.msg-raw");
    return raw ? raw.content.textContent : "";
  }

  function flash(button, text) {
    const label = button.innerHTML; // our own markup (a label and maybe a screen-reader suffix)
    button.textContent = text;
    setTimeout(() => { button.innerHTML = label; }, 1500);
  }

  function copy(text, button) {
    if (!navigator.clipboard) return;
    navigator.clipboard.writeText(text).then(
      () => flash(button, "Copied"),
      () => flash(button, "Copy failed"),
    );
  }

  function fromHTML(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    // The rating forms in arriving messages post with htmx, as those rendered with the page.
    if (window.htmx) queueMicrotask(() => window.htmx.process(messages));
    return template.content;
  }

  // Screen readers hear that a reply started and ended, not every streamed frame.
  const announcer = document.getElementById("chat-announcer");
  function announce(text) {
    if (announcer) announcer.textContent = text;
  }

  function showError(text) {
    if (!errorBox) return;
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  function updatePathCost() {
    const target = document.getElementById("path-cost");
    if (!target) return;
    const costs = [...messages.querySelectorAll("article.msg")].map((el) => el.dataset.cost);
    // What the sum leaves out, as the server says it (billing.money.total_label).
    const unpriced = messages.querySelectorAll(
      "article.msg[data-role=assistant][data-cost-source=unpriced]",
    ).length;
    target.textContent =
      sumUsd(costs) + (unpriced ? ` + ${unpriced} unpriced call${unpriced === 1 ? "" : "s"}` : "");
  }

  // The reply streaming on the visible path (there is at most one), whoever started it.
  function visibleStreaming() {
    const streamingEl = messages.querySelector("article.msg[data-status=streaming]");
    return streamingEl && !stopping.has(streamingEl.dataset.id) ? Number(streamingEl.dataset.id) : null;
  }

  // Send or Stop, from what the page shows: after a reload mid-reply, for a reply a teammate
  // started, for a Continue — whenever the visible reply streams.
  function syncComposer() {
    if (!composer) return;
    const streamingId = visibleStreaming();
    sendButton.hidden = streamingId !== null;
    stopButton.hidden = streamingId === null;
  }

  function stop() {
    const id = visibleStreaming();
    if (id === null || !canUse) return false;
    send({ type: "stop", message_id: id });
    stopping.add(String(id));
    syncComposer(); // the composer is usable at once; the final frame settles the message
    return true;
  }

  // A thinking model's reasoning: a collapsed block above the answer, appended to as it
  // streams (one Text node); the final frame brings the server's "Thought for N s".
  function reasoningNode(id) {
    const el = article(id);
    if (!el) return null;
    let holder = el.querySelector(".reasoning-text");
    if (!holder) {
      const block = document.createElement("details");
      block.className = "reasoning";
      const summary = document.createElement("summary");
      summary.textContent = "Thinking…";
      holder = document.createElement("div");
      holder.className = "reasoning-text";
      block.append(summary, holder);
      const content = el.querySelector(".content");
      if (!content) return null;
      content.before(block);
    }
    if (!holder.firstChild) holder.append(document.createTextNode(""));
    return holder.firstChild;
  }

  function applyReasoning(id, offset, text) {
    const node = reasoningNode(id);
    if (!node || offset > node.length || offset + text.length <= node.length) return;
    node.appendData(text.slice(node.length - offset));
  }

  // --- Frames --------------------------------------------------------------------------------

  const handlers = {
    hello(frame) {
      frame.snapshots.forEach((snapshot) => streams.snapshot(snapshot));
      // A reply this page shows as streaming but the server no longer runs ended while we were
      // (re)connecting: catch up with the saved version.
      const live = new Set(frame.snapshots.map((snapshot) => String(snapshot.id)));
      const stale = [...messages.querySelectorAll("article.msg[data-status=streaming]")].some((el) => !live.has(el.dataset.id));
      if (stale && !catchingUp) {
        catchingUp = true;
        send({ type: "sync" });
      }
    },
    snapshot(frame) {
      if (frame.reasoning) {
        const thoughts = reasoningNode(frame.id);
        if (thoughts) thoughts.data = frame.reasoning;
      }
      streams.snapshot(frame);
    },
    started(frame) {
      document.getElementById("chat-start")?.remove();
      // The new messages replace whatever followed their parent on the visible path.
      const all = [...messages.querySelectorAll("article.msg")];
      const cut = frame.after === null ? 0 : all.findIndex((el) => el.dataset.id === String(frame.after)) + 1;
      if (frame.after === null || cut > 0) all.slice(cut).forEach((el) => el.remove());
      messages.append(fromHTML(frame.html));
      announce("Reply started.");
      const asked = frame.ref && pending.get(frame.ref);
      if (asked) {
        pending.delete(frame.ref);
        if (asked.type === "send" && input) {
          input.value = "";
          grow();
          // The files waiting in the composer went with this message.
          document.getElementById("pending-attachments")?.replaceChildren();
        }
        if (asked.settings) settingsApplied();
      }
      syncComposer();
      updatePathCost();
      scrollDown(Boolean(asked));
    },
    resumed(frame) {
      const el = article(frame.id);
      if (el) {
        el.dataset.status = "streaming";
        el.className = el.className.replace(/status-\S+/, "status-streaming");
        el.querySelector(".msg-error")?.remove();
        el.querySelector(".msg-foot").replaceChildren();
        streams.get(frame.id);
      }
      if (frame.ref) pending.delete(frame.ref);
      syncComposer();
    },
    delta(frame) {
      if (streams.delta(frame)) scrollDown(false);
    },
    reasoning(frame) {
      applyReasoning(frame.id, frame.offset, frame.text);
    },
    final(frame) {
      const el = article(frame.id);
      if (el && frame.html) {
        el.replaceWith(fromHTML(frame.html));
      }
      streams.forget(frame.id);
      stopping.delete(String(frame.id));
      if (frame.conversation) {
        const cost = document.getElementById("chat-cost");
        const summary = cost && cost.querySelector("[data-testid=conversation-cost]");
        if (summary) summary.replaceWith(fromHTML(frame.conversation.cost_html));
        const title = document.getElementById("chat-title");
        if (title && frame.conversation.title) title.textContent = frame.conversation.title;
        const listed = document.querySelector(`#conversation-${chat.dataset.conversation} .c-title`);
        if (listed && frame.conversation.title) listed.textContent = frame.conversation.title;
      }
      if (el) announce(frame.status === "complete" ? "Reply finished." : `Reply ${frame.status}.`);
      syncComposer();
      updatePathCost();
      scrollDown(false);
    },
    path(frame) {
      catchingUp = false;
      messages.replaceChildren(fromHTML(frame.html));
      if (frame.ref) pending.delete(frame.ref);
      syncComposer();
      updatePathCost();
    },
    forked(frame) {
      window.location.assign(frame.url);
    },
    error(frame) {
      if (frame.ref) pending.delete(frame.ref);
      showError(`${frame.message}`);
    },
    pong() {},
  };

  // --- The socket: reconnect with back-off, a live countdown and "Retry now" ------------------

  const MAX_WAIT = 5000; // ms: a server that comes back is noticed within about this long
  let retries = 0;
  let retryTimer = null;
  let countdown = null;
  let retryAt = 0;

  function status(text, state) {
    if (!connection) return;
    connection.textContent = text;
    connection.dataset.state = state;
    if (reconnectNow) reconnectNow.hidden = state !== "retry";
  }

  function tick() {
    const seconds = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
    status(seconds > 0 ? `Reconnecting in ${seconds} s…` : "Reconnecting…", "retry");
  }

  function clearRetry() {
    clearTimeout(retryTimer);
    clearInterval(countdown);
    retryTimer = countdown = null;
  }

  function scheduleReconnect() {
    clearRetry();
    retries += 1;
    // 0.5, 1, 2, 4, 5, 5 … s, ± 20 % so many tabs don't all knock at once.
    const wait = Math.min(MAX_WAIT, 500 * 2 ** (retries - 1)) * (0.8 + Math.random() * 0.4);
    retryAt = Date.now() + wait;
    tick();
    countdown = setInterval(tick, 250);
    retryTimer = setTimeout(reconnect, wait);
  }

  function reconnect() {
    clearRetry();
    if (socket && socket.readyState !== WebSocket.CLOSED) return;
    status("Reconnecting…", "retry");
    connect();
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${window.location.host}${chat.dataset.ws}`);
    socket = ws;
    ws.addEventListener("open", () => {
      retries = 0;
      status("Live", "open");
      // Back after a drop: catch up with whatever happened meanwhile (snapshots follow).
      if (everConnected) {
        send({ type: "sync" });
        announce("Connected again.");
      }
      everConnected = true;
    });
    let pieces = []; // a frame too big for one websocket message arrives in `part` frames
    ws.addEventListener("message", (event) => {
      let frame = JSON.parse(event.data);
      if (frame.type === "part") {
        pieces.push(frame.data);
        if (!frame.last) return;
        frame = JSON.parse(pieces.join(""));
        pieces = [];
      }
      const handler = handlers[frame.type];
      if (handler) handler(frame);
    });
    ws.addEventListener("close", (event) => {
      if (ws !== socket) return;
      if ([4401, 4403, 4404].includes(event.code)) {
        status(event.code === 4401 ? "Signed out — reload to sign in" : "You no longer have access", "closed");
        if (composer) composer.querySelectorAll("textarea, button, select, input").forEach((el) => { el.disabled = true; });
        return;
      }
      if (retries === 0) announce("Connection lost; reconnecting.");
      scheduleReconnect();
    });
  }

  if (reconnectNow) reconnectNow.addEventListener("click", reconnect);
  // The network or the tab coming back is the best moment to try at once.
  window.addEventListener("online", () => { if (retryTimer) reconnect(); });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && retryTimer) reconnect();
  });

  function send(frame) {
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      showError("Not connected — reconnecting…");
      return null;
    }
    refCounter += 1;
    const ref = `r${refCounter}`;
    pending.set(ref, frame);
    socket.send(JSON.stringify({ ...frame, ref }));
    return ref;
  }

  function lastId() {
    const all = messages.querySelectorAll("article.msg");
    return all.length ? Number(all[all.length - 1].dataset.id) : null;
  }

  // --- Settings the user sees are the settings a reply uses -----------------------------------
  // The system prompt and parameters panel saves on "Save settings"; a send, edit or regenerate
  // with unsaved changes carries them, and the server saves them with the action.

  const SETTINGS_FIELDS = ["system_prompt", "temperature", "top_p", "max_tokens", "seed"];
  let savedSettings = null;

  function settingsForm() {
    return document.getElementById("settings-form");
  }

  function currentSettings() {
    const form = settingsForm();
    if (!form) return null;
    const data = new FormData(form);
    return Object.fromEntries(SETTINGS_FIELDS.map((name) => [name, String(data.get(name) ?? "")]));
  }

  function unsavedSettings() {
    const now = currentSettings();
    if (!now || !savedSettings) return null;
    return SETTINGS_FIELDS.some((name) => now[name] !== savedSettings[name]) ? now : null;
  }

  function settingsApplied() {
    savedSettings = currentSettings();
    const form = settingsForm();
    const note = form && form.querySelector("[data-settings-state]");
    if (note) {
      note.textContent = "saved with your message";
      note.hidden = false;
    }
  }

  savedSettings = currentSettings();
  document.body.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target && event.detail.target.id === "settings-form") {
      if (event.detail.xhr && event.detail.xhr.status < 400) savedSettings = currentSettings();
    }
  });

  // Attaching files: a progress bar while the upload runs (htmx sends it; we only show it).
  const attachProgress = document.getElementById("attach-progress");
  document.body.addEventListener("htmx:xhr:progress", (event) => {
    if (!attachProgress || event.target.id !== "attach-form" || !event.detail.total) return;
    attachProgress.hidden = false;
    attachProgress.value = Math.round((100 * event.detail.loaded) / event.detail.total);
  });
  document.body.addEventListener("htmx:afterRequest", (event) => {
    if (!attachProgress || event.target.id !== "attach-form") return;
    attachProgress.hidden = true;
    attachProgress.value = 0;
    const inputEl = document.getElementById("attach-input");
    if (inputEl) inputEl.value = "";
  });

  // Send-like actions carry what the panel shows when it differs from what is saved.
  function act(frame) {
    const settings = unsavedSettings();
    return send(settings ? { ...frame, settings } : frame);
  }

  // --- Composer ------------------------------------------------------------------------------

  // The box grows with its text up to a limit (CSS `field-sizing` where the browser has it).
  const growsByItself = window.CSS && CSS.supports("field-sizing", "content");
  function grow() {
    if (!input || growsByItself) return;
    input.style.height = "auto";
    input.style.height = `${input.scrollHeight + 2}px`;
  }

  if (composer) {
    composer.addEventListener("submit", (event) => {
      event.preventDefault();
      const content = input.value;
      if (!content.trim()) return;
      showError("");
      act({ type: "send", parent_id: lastId(), content });
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        composer.requestSubmit();
      }
    });
    input.addEventListener("input", grow);
    stopButton.addEventListener("click", () => {
      stop();
      input.focus();
    });
    grow();
    // A new, empty conversation: ready to type.
    if (document.getElementById("chat-start")) input.focus();
  }

  // Esc stops the visible streaming reply wherever the focus is — unless something else that
  // Esc closes is open (a menu, a dialog, an edit box).
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || event.defaultPrevented || event.isComposing) return;
    if (document.querySelector("details.menu[open], dialog[open]")) return;
    if (event.target.closest && event.target.closest(".edit-form")) return;
    if (stop()) event.preventDefault();
  });

  // --- Message actions -----------------------------------------------------------------------

  function startEdit(el) {
    if (el.querySelector(".edit-form")) return;
    const content = el.querySelector(".content");
    const original = rawText(el);
    const form = document.createElement("form");
    form.className = "edit-form";
    const area = document.createElement("textarea");
    area.value = original;
    area.rows = Math.min(12, original.split("\n").length + 1);
    area.setAttribute("aria-label", "Edit message");
    const save = document.createElement("button");
    save.type = "submit";
    save.className = "btn primary small";
    save.textContent = "Save and ask again";
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "btn small";
    cancel.textContent = "Cancel";
    const buttons = document.createElement("div");
    buttons.className = "actions";
    buttons.append(save, cancel);
    form.append(area, buttons);
    content.hidden = true;
    content.after(form);
    el.classList.add("editing");
    area.focus();
    const close = () => { form.remove(); content.hidden = false; el.classList.remove("editing"); };
    cancel.addEventListener("click", close);
    area.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        close();
      }
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      act({ type: "edit", message_id: Number(el.dataset.id), content: area.value });
    });
  }

  messages.addEventListener("click", (event) => {
    const copyCode = event.target.closest("[data-copy-code]");
    if (copyCode) {
      const pre = copyCode.closest(".code-block")?.querySelector("pre");
      if (pre) copy(pre.innerText, copyCode);
      return;
    }
    const button = event.target.closest("[data-action]");
    if (!button) return;
    const el = button.closest("article.msg");
    const id = Number(el.dataset.id);
    const action = button.dataset.action;
    showError("");
    if (action === "copy") {
      copy(rawText(el), button);
    } else if (action === "copy-code") {
      const blocks = el.querySelectorAll(".content .code-block pre, .content pre");
      const last = blocks[blocks.length - 1];
      if (last) copy(last.innerText.replace(/\n$/, ""), button);
    } else if (action === "switch") {
      send({ type: "switch", message_id: Number(button.dataset.target) });
    } else if (action === "edit") {
      startEdit(el);
    } else if (action === "stop") {
      send({ type: "stop", message_id: id });
      stopping.add(String(id));
      syncComposer();
    } else if (action === "regenerate" || action === "retry") {
      act({ type: action, message_id: id });
    } else if (action === "continue" || action === "fork") {
      send({ type: action, message_id: id });
    }
  });

  // Open at the latest message (or at the one the address names), and offer the way back down.
  if ("scrollRestoration" in history) history.scrollRestoration = "manual";
  const named = window.location.hash.startsWith("#message-") && document.getElementById(window.location.hash.slice(1));
  if (named) named.scrollIntoView({ block: "start" });
  else scrollDown(true);
  window.addEventListener("scroll", updateJump, { passive: true });
  window.addEventListener("resize", updateJump, { passive: true });
  if (jump) {
    jump.addEventListener("click", () => {
      const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
      window.scrollTo({ top: document.documentElement.scrollHeight, behavior: smooth ? "smooth" : "auto" });
    });
  }

  syncComposer();
  updatePathCost();
  connect();
}
