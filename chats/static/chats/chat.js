// The conversation page: one websocket, frames in, actions out.
//
// Only the streaming message changes while tokens arrive (text appended to one Text node); the
// server's rendering (Markdown → HTML → sanitized) replaces it when the reply ends. The history
// is never re-rendered per token, so long conversations stay smooth.

import { sumUsd } from "../billing/money.js";

const chat = document.getElementById("chat");

if (chat) {
  const messages = document.getElementById("messages");
  const composer = document.getElementById("composer");
  const input = document.getElementById("composer-input");
  const sendButton = document.getElementById("composer-send");
  const stopButton = document.getElementById("composer-stop");
  const errorBox = document.getElementById("composer-error");
  const connection = document.getElementById("connection");
  const canUse = chat.dataset.canUse === "1";
  const canWrite = chat.dataset.canWrite === "1";

  let socket = null;
  let retries = 0;
  let everConnected = false;
  let refCounter = 0;
  const pending = new Map(); // ref → what we asked for
  let myReply = null; // id of the reply this tab started and may stop
  let catchingUp = false;

  chat.classList.toggle("no-use", !canUse);
  chat.classList.toggle("no-write", !canWrite);

  // --- Helpers -------------------------------------------------------------------------------

  const article = (id) => document.getElementById(`message-${id}`);

  const jump = document.getElementById("jump-latest");

  function nearBottom() {
    return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 160;
  }

  function scrollDown(force) {
    if (force || nearBottom()) window.scrollTo({ top: document.documentElement.scrollHeight });
    updateJump();
  }

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
    const raw = el.querySelector("template.msg-raw");
    if (raw) return raw.content.textContent;
    const live = el.querySelector(".stream-text");
    return live ? live.textContent : "";
  }

  function flash(button, text) {
    const label = button.textContent;
    button.textContent = text;
    setTimeout(() => { button.textContent = label; }, 1500);
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

  function setStreaming(id) {
    myReply = id;
    if (sendButton) sendButton.hidden = id !== null;
    if (stopButton) stopButton.hidden = id === null;
  }

  function updatePathCost() {
    const target = document.getElementById("path-cost");
    if (!target) return;
    const costs = [...messages.querySelectorAll("article.msg")].map((el) => el.dataset.cost);
    target.textContent = sumUsd(costs);
  }

  // The streaming text of a message: one Text node we append to.
  function streamNode(id) {
    const el = article(id);
    if (!el) return null;
    let holder = el.querySelector(".stream-text");
    if (!holder) {
      const content = el.querySelector(".content");
      if (!content) return null;
      content.className = "content streaming";
      content.textContent = "";
      holder = document.createElement("span");
      holder.className = "stream-text";
      const cursor = document.createElement("span");
      cursor.className = "cursor";
      cursor.setAttribute("aria-hidden", "true");
      content.append(holder, cursor);
    }
    if (!holder.firstChild) holder.append(document.createTextNode(""));
    return holder.firstChild;
  }

  function applyText(id, offset, text) {
    const node = streamNode(id);
    if (!node) return;
    const have = node.length;
    if (offset > have) return; // a gap: the next snapshot (reconnect) repairs it
    if (offset + text.length <= have) return; // already shown
    node.appendData(text.slice(have - offset));
    scrollDown(false);
  }

  // --- Frames --------------------------------------------------------------------------------

  const handlers = {
    hello(frame) {
      frame.snapshots.forEach((snapshot) => handlers.snapshot(snapshot));
      // A reply on this page that is still streaming (the first one of a new chat starts
      // before the page opens): Stop acts on it.
      const onPage = frame.snapshots.find((snapshot) => article(snapshot.id));
      if (onPage && canUse && myReply === null) setStreaming(onPage.id);
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
      const node = streamNode(frame.id);
      if (!node) return;
      node.data = frame.text;
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
        if (asked.type === "send" && input) input.value = "";
        setStreaming(frame.reply);
      }
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
        streamNode(frame.id);
      }
      if (frame.ref && pending.has(frame.ref)) {
        pending.delete(frame.ref);
        setStreaming(frame.id);
      }
    },
    delta(frame) {
      applyText(frame.id, frame.offset, frame.text);
    },
    final(frame) {
      const el = article(frame.id);
      if (el && frame.html) {
        el.replaceWith(fromHTML(frame.html));
      }
      if (frame.conversation) {
        const cost = document.getElementById("chat-cost");
        const summary = cost && cost.querySelector("[data-testid=conversation-cost]");
        if (summary) summary.replaceWith(fromHTML(frame.conversation.cost_html));
        const title = document.getElementById("chat-title");
        if (title && frame.conversation.title) title.textContent = frame.conversation.title;
        const listed = document.querySelector(`#conversation-${chat.dataset.conversation} .c-title`);
        if (listed && frame.conversation.title) listed.textContent = frame.conversation.title;
      }
      if (myReply === frame.id) setStreaming(null);
      const finished = article(frame.id);
      const state = finished ? finished.dataset.status : "complete";
      announce(state === "complete" ? "Reply finished." : `Reply ${state}.`);
      updatePathCost();
      scrollDown(false);
    },
    path(frame) {
      catchingUp = false;
      messages.replaceChildren(fromHTML(frame.html));
      if (frame.ref) pending.delete(frame.ref);
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

  // --- The socket ----------------------------------------------------------------------------

  function status(text, state) {
    if (!connection) return;
    connection.textContent = text;
    connection.dataset.state = state;
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${window.location.host}${chat.dataset.ws}`);
    socket.addEventListener("open", () => {
      retries = 0;
      status("Live", "open");
      // Back after a drop: catch up with whatever happened meanwhile (snapshots follow).
      if (everConnected) send({ type: "sync" });
      everConnected = true;
    });
    socket.addEventListener("message", (event) => {
      const frame = JSON.parse(event.data);
      const handler = handlers[frame.type];
      if (handler) handler(frame);
    });
    socket.addEventListener("close", (event) => {
      if ([4401, 4403, 4404].includes(event.code)) {
        status(event.code === 4401 ? "Signed out — reload to sign in" : "You no longer have access", "closed");
        if (composer) composer.querySelectorAll("textarea, button, select").forEach((el) => { el.disabled = true; });
        return;
      }
      retries += 1;
      const wait = Math.min(10000, 500 * 2 ** (retries - 1));
      status(`Reconnecting in ${Math.round(wait / 1000)} s…`, "retry");
      setTimeout(connect, wait);
    });
  }

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

  // --- Composer ------------------------------------------------------------------------------

  if (composer) {
    composer.addEventListener("submit", (event) => {
      event.preventDefault();
      const content = input.value;
      if (!content.trim()) return;
      showError("");
      send({ type: "send", parent_id: lastId(), content });
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        composer.requestSubmit();
      } else if (event.key === "Escape" && myReply !== null) {
        send({ type: "stop", message_id: myReply });
      }
    });
    stopButton.addEventListener("click", () => {
      if (myReply !== null) send({ type: "stop", message_id: myReply });
      // The composer is usable at once; the final frame settles the message.
      setStreaming(null);
      input.focus();
    });
  }

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
    cancel.addEventListener("click", () => { form.remove(); content.hidden = false; el.classList.remove("editing"); });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      send({ type: "edit", message_id: Number(el.dataset.id), content: area.value });
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
    } else if (action === "switch") {
      send({ type: "switch", message_id: Number(button.dataset.target) });
    } else if (action === "edit") {
      startEdit(el);
    } else if (action === "stop") {
      send({ type: "stop", message_id: id });
    } else if (["regenerate", "retry", "continue", "fork"].includes(action)) {
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

  updatePathCost();
  connect();
}
