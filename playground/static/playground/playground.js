// The playground's pages: a comparison (run every slot at once, watch them stream side by side)
// and an arena battle. One websocket per page; frames in, actions out.
//
// While answers stream, only their text nodes grow (one Text node each) and their live metrics
// tick; the server's rendering (Markdown → HTML → sanitized) replaces an answer when it ends,
// and the whole run's summary (badges, diff, charts) arrives with the last one.

function fromHTML(html) {
  const template = document.createElement("template");
  template.innerHTML = (html || "").trim();
  return template.content;
}

function swapIn(target, html) {
  target.replaceChildren(fromHTML(html));
  if (window.htmx) window.htmx.process(target);
}

// --- One socket with reconnects ------------------------------------------------------------------

function openSocket(root, handlers, onOpen) {
  const connection = document.getElementById("connection");
  let socket = null;
  let retries = 0;
  let everConnected = false;
  let refs = 0;

  function status(text, state) {
    if (!connection) return;
    connection.textContent = text;
    connection.dataset.state = state;
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${window.location.host}${root.dataset.ws}`);
    socket.addEventListener("open", () => {
      retries = 0;
      status("Live", "open");
      onOpen(everConnected);
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
        root.querySelectorAll("#run, #stop-all").forEach((el) => { el.disabled = true; });
        return;
      }
      retries += 1;
      const wait = Math.min(10000, 500 * 2 ** (retries - 1));
      status(`Reconnecting in ${Math.round(wait / 1000)} s…`, "retry");
      setTimeout(connect, wait);
    });
  }

  function send(frame) {
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    refs += 1;
    socket.send(JSON.stringify({ ...frame, ref: `r${refs}` }));
    return true;
  }

  connect();
  return { send, isOpen: () => socket && socket.readyState === WebSocket.OPEN };
}

// --- Streaming text and live metrics -------------------------------------------------------------

const live = new Map(); // answer id → {start, first, chars}
let ticker = null;

function streamNode(id) {
  const el = document.getElementById(`answer-${id}`);
  if (!el) return null;
  let holder = el.querySelector(".stream-text");
  if (!holder) return null;
  if (!holder.firstChild) holder.append(document.createTextNode(""));
  return holder.firstChild;
}

function applyText(id, offset, text) {
  const node = streamNode(id);
  if (!node) return;
  const have = node.length;
  if (offset > have) return; // a gap: the next snapshot (reconnect) repairs it
  if (offset + text.length <= have) return;
  node.appendData(text.slice(have - offset));
  const state = live.get(id);
  if (state) {
    if (state.first === null) state.first = performance.now();
    state.chars = node.length;
  }
}

function applyReasoning(id, offset, text) {
  const el = document.getElementById(`answer-${id}`);
  const box = el && el.querySelector("details.reasoning");
  const holder = box && box.querySelector(".stream-reasoning");
  if (!holder) return;
  box.hidden = false;
  if (!holder.firstChild) holder.append(document.createTextNode(""));
  const node = holder.firstChild;
  if (offset > node.length || offset + text.length <= node.length) return;
  node.appendData(text.slice(node.length - offset));
}

function formatMs(ms) {
  return ms >= 10000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

function tick() {
  const now = performance.now();
  let any = false;
  live.forEach((state, id) => {
    const el = document.getElementById(`answer-${id}`);
    if (!el || el.dataset.status !== "streaming") { live.delete(id); return; }
    any = true;
    const set = (name, text) => {
      const dd = el.querySelector(`[data-metric=${name}]`);
      if (dd) { dd.textContent = text; dd.classList.add("has-live"); }
    };
    set("total", formatMs(now - state.start));
    if (state.first !== null) {
      set("ttft", formatMs(state.first - state.start));
      // About four characters a token: a live hint; the final numbers come from the server.
      const tokens = Math.max(1, Math.round(state.chars / 4));
      set("tokens", `≈ ${tokens}`);
      const seconds = (now - state.first) / 1000;
      if (seconds > 0.25) set("tps", `≈ ${(tokens / seconds).toFixed(1)} tok/s`);
    }
  });
  if (!any && ticker) { clearInterval(ticker); ticker = null; }
}

function watchLive(root) {
  root.querySelectorAll("article.answer[data-status=streaming]").forEach((el) => {
    const id = Number(el.dataset.id);
    if (!live.has(id)) live.set(id, { start: performance.now(), first: null, chars: 0 });
  });
  if (live.size && !ticker) ticker = setInterval(tick, 250);
}

function copyAnswer(button) {
  const el = button.closest("article.answer");
  const text = el && el.querySelector(".content").innerText;
  if (text && navigator.clipboard) navigator.clipboard.writeText(text);
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = "Copy"; }, 1500);
}

// --- A comparison ------------------------------------------------------------------------------------

const page = document.getElementById("playground");

if (page) {
  const editor = () => document.getElementById("editor");
  const results = document.getElementById("results");
  const runButton = document.getElementById("run");
  const stopAll = document.getElementById("stop-all");
  const errorBox = document.getElementById("run-error");
  const dialog = document.getElementById("confirm-dialog");
  let currentRun = null;
  let waiting = false;

  const showError = (text) => { if (errorBox) { errorBox.textContent = text; errorBox.hidden = !text; } };

  function running() {
    const section = results.querySelector("section.results[data-run]");
    return !!section && section.dataset.done === "0";
  }

  function refreshControls() {
    const busy = running();
    if (stopAll) stopAll.hidden = !busy;
    if (runButton) runButton.disabled = waiting || !socket.isOpen();
    const section = results.querySelector("section.results[data-run]");
    currentRun = section ? Number(section.dataset.run) : null;
  }

  function formData() {
    const form = editor();
    const data = {};
    if (!form) return data;
    new FormData(form).forEach((value, key) => { if (key !== "csrfmiddlewaretoken") data[key] = value; });
    return data;
  }

  function run(confirm) {
    showError("");
    waiting = true;
    refreshControls();
    if (!socket.send({ type: "run", form: formData(), confirm: Boolean(confirm) })) {
      waiting = false;
      showError("Not connected — reconnecting…");
      refreshControls();
    }
  }

  const handlers = {
    hello(frame) {
      frame.snapshots.forEach((snapshot) => handlers.snapshot(snapshot));
      // Answers this page shows as streaming that the server no longer runs ended while we were
      // away: catch up with the saved run.
      const alive = new Set(frame.snapshots.map((s) => String(s.id)));
      const stale = [...results.querySelectorAll("article.answer[data-status=streaming]")].some((el) => !alive.has(el.dataset.id));
      if (stale) socket.send({ type: "sync" });
      watchLive(results);
      refreshControls();
    },
    snapshot(frame) {
      const node = streamNode(frame.id);
      if (node) node.data = frame.text;
    },
    run_started(frame) {
      waiting = false;
      const counter = document.getElementById("run-count");
      if (counter) {
        const count = Number(counter.dataset.count) + 1;
        counter.dataset.count = String(count);
        counter.textContent = `${count} run${count === 1 ? "" : "s"}`;
      }
      swapIn(results, frame.html);
      watchLive(results);
      refreshControls();
      results.scrollIntoView({ behavior: "smooth", block: "start" });
    },
    delta(frame) { applyText(frame.id, frame.offset, frame.text); },
    reasoning(frame) { applyReasoning(frame.id, frame.offset, frame.text); },
    final(frame) {
      const el = document.getElementById(`answer-${frame.id}`);
      if (el && frame.html) {
        el.replaceWith(fromHTML(frame.html));
        const fresh = document.getElementById(`answer-${frame.id}`);
        if (fresh && window.htmx) window.htmx.process(fresh);
      }
      if (frame.run && frame.run.html) swapIn(results, frame.run.html);
      refreshControls();
    },
    judged(frame) { handlers.final(frame); }, // "RAG quality" scores: the answer's card again
    results(frame) {
      if (frame.html) swapIn(results, frame.html);
      watchLive(results);
      refreshControls();
    },
    confirm(frame) {
      waiting = false;
      refreshControls();
      document.getElementById("confirm-body").replaceChildren(fromHTML(frame.html));
      if (dialog.showModal) dialog.showModal();
    },
    error(frame) {
      waiting = false;
      showError(frame.message);
      refreshControls();
    },
    pong() {},
  };

  const socket = openSocket(page, handlers, (reconnected) => {
    if (reconnected) socket.send({ type: "sync" });
    refreshControls();
  });

  if (runButton) runButton.addEventListener("click", () => run(false));
  if (stopAll) stopAll.addEventListener("click", () => { if (currentRun) socket.send({ type: "stop_all", run_id: currentRun }); });
  if (dialog) {
    dialog.querySelector("[data-confirm-cancel]").addEventListener("click", () => dialog.close());
    dialog.querySelector("[data-confirm-run]").addEventListener("click", () => { dialog.close(); run(true); });
  }

  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && runButton && !runButton.disabled) {
      event.preventDefault();
      run(false);
    } else if (event.key === "Escape" && running() && currentRun && !(dialog && dialog.open)) {
      socket.send({ type: "stop_all", run_id: currentRun });
    }
  });

  results.addEventListener("click", (event) => {
    const button = event.target.closest("[data-action]");
    if (!button) return;
    const el = button.closest("article.answer");
    if (button.dataset.action === "stop" && el) socket.send({ type: "stop", answer_id: Number(el.dataset.id) });
    if (button.dataset.action === "copy") copyAnswer(button);
  });

  // The slot count in the Run button follows the editor (htmx re-renders it).
  document.body.addEventListener("htmx:afterSwap", () => {
    const count = document.querySelectorAll("#slots article.slot").length;
    if (runButton) runButton.lastChild.textContent = ` Run ${count} models`;
  });
}

// --- An arena battle ---------------------------------------------------------------------------------

const battle = document.getElementById("battle");

if (battle) {
  const answers = document.getElementById("battle-answers");
  const canUse = battle.dataset.canUse === "1";

  function voting() {
    const all = [...answers.querySelectorAll("article.answer[data-id]")];
    const done = all.length === 2 && all.every((el) => el.dataset.status !== "streaming");
    document.querySelectorAll(".vote-buttons button").forEach((button) => { button.disabled = !done; });
    const hint = document.querySelector(".vote-hint");
    if (hint) hint.hidden = done;
  }

  const handlers = {
    hello(frame) {
      frame.snapshots.forEach((snapshot) => handlers.snapshot(snapshot));
      if (!frame.started && canUse) socket.send({ type: "start" });
      const alive = new Set(frame.snapshots.map((s) => String(s.id)));
      const stale = [...answers.querySelectorAll("article.answer[data-status=streaming]")].some((el) => !alive.has(el.dataset.id));
      if (stale || (frame.started && !answers.querySelector("article.answer[data-id]"))) socket.send({ type: "sync" });
      watchLive(answers);
      voting();
    },
    snapshot(frame) {
      const node = streamNode(frame.id);
      if (node) node.data = frame.text;
    },
    battle_started(frame) { swapIn(answers, frame.html); watchLive(answers); voting(); },
    answers(frame) { swapIn(answers, frame.html); watchLive(answers); voting(); },
    delta(frame) { applyText(frame.id, frame.offset, frame.text); },
    final(frame) {
      const el = document.getElementById(`answer-${frame.id}`);
      if (el && frame.html) el.replaceWith(fromHTML(frame.html));
      voting();
    },
    error(frame) {
      const hint = document.querySelector(".vote-hint");
      if (hint) { hint.hidden = false; hint.textContent = frame.message; }
    },
    pong() {},
  };

  const socket = openSocket(battle, handlers, (reconnected) => { if (reconnected) socket.send({ type: "sync" }); });

  answers.addEventListener("click", (event) => {
    const button = event.target.closest("[data-action=stop]");
    if (button) socket.send({ type: "stop", answer_id: Number(button.closest("article.answer").dataset.id) });
  });
  voting();
}
