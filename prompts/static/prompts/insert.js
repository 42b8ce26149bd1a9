// The prompt picker: a button (or "/" typed into an empty message) opens a dialog to search the
// library; choosing a prompt shows a small form for its variables, and Insert renders it on the
// server (/api/prompts/<id>/render/) and puts the user part into the page's text box — and, if
// asked, the system part into its system prompt. Everything shown is HTML drawn by the server.
// Also "Save as prompt": a message's text or the system prompt opens in the prompt editor.

const dialog = document.getElementById("prompt-dialog");

function csrfToken() {
  const field = document.querySelector("input[name=csrfmiddlewaretoken]");
  if (field) return field.value;
  try {
    return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
  } catch (e) {
    return "";
  }
}

function urlWith(template, pk) {
  return template.replace("/0/", `/${pk}/`);
}

if (dialog) {
  const search = document.getElementById("prompt-search");
  const results = document.getElementById("prompt-results");
  const searchStep = document.getElementById("prompt-search-step");
  const formStep = document.getElementById("prompt-form-step");
  const target = () => document.querySelector(dialog.dataset.target);
  let slashStart = null; // the "/query" typed in the text box, replaced on insert
  let searchTimer = null;
  let searchSeq = 0;
  let chooseSeq = 0;

  function options() {
    return Array.from(results.querySelectorAll("[role=option]"));
  }

  function select(option) {
    options().forEach((o) => o.setAttribute("aria-selected", o === option ? "true" : "false"));
    if (option) {
      search.setAttribute("aria-activedescendant", option.id);
      option.scrollIntoView({ block: "nearest" });
    } else {
      search.removeAttribute("aria-activedescendant");
    }
  }

  async function load(query) {
    const seq = ++searchSeq;
    const url = `${dialog.dataset.pickerUrl}?q=${encodeURIComponent(query)}`;
    const response = await fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" });
    if (seq !== searchSeq) return; // a newer search answered first
    results.innerHTML = response.ok ? await response.text() : '<p class="form-errors">Couldn\'t load prompts.</p>';
    select(results.querySelector("[aria-selected=true]"));
  }

  function open(query = "") {
    chooseSeq++; // a form still on its way is no longer wanted
    formStep.hidden = true;
    formStep.innerHTML = "";
    searchStep.hidden = false;
    search.value = query;
    if (!dialog.open) dialog.showModal();
    search.focus();
    load(query);
  }

  function close() {
    if (dialog.open) dialog.close();
  }

  async function choose(pk, version = "") {
    const seq = ++chooseSeq;
    const url = urlWith(dialog.dataset.formUrl, pk) + (version ? `?version=${encodeURIComponent(version)}` : "");
    // Another version of the form on screen: until its replacement arrives nothing in it can be
    // used — an Insert pressed now would send this form's variables and then vanish with its
    // errors, and what is typed now would be lost — and what was typed carries over.
    const previous = formStep.hidden ? null : formStep.querySelector("form");
    const typed = {};
    if (previous) {
      previous.querySelectorAll("[name^='v-']").forEach((input) => {
        typed[input.name] = input.value;
      });
      previous.setAttribute("aria-busy", "true");
      previous.querySelectorAll("input, select, textarea, button").forEach((el) => {
        el.disabled = true;
      });
    }
    let response = null;
    try {
      response = await fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" });
    } catch (e) {
      response = null;
    }
    if (seq !== chooseSeq) return; // a newer choice answered first
    if (!response || !response.ok) {
      const message = "This prompt is no longer available.";
      if (previous) {
        previous.removeAttribute("aria-busy");
        previous.querySelectorAll("input, select, textarea, button").forEach((el) => {
          el.disabled = false;
        });
        showErrors(previous, message);
      } else {
        results.insertAdjacentHTML("afterbegin", `<p class="form-errors" role="alert">${message}</p>`);
      }
      return;
    }
    const html = await response.text();
    if (seq !== chooseSeq) return;
    formStep.innerHTML = html;
    searchStep.hidden = true;
    formStep.hidden = false;
    const form = formStep.querySelector("form");
    form.querySelectorAll("[name^='v-']").forEach((input) => {
      if (typed[input.name] && !input.value) input.value = typed[input.name];
    });
    const systemField = dialog.dataset.system && document.querySelector(dialog.dataset.system);
    const useSystem = form.querySelector("[name=use_system]");
    if (useSystem && !systemField) useSystem.closest(".field").remove(); // nowhere to put it
    if (previous) {
      form.querySelector("#prompt-version").focus(); // where the keyboard was
      return;
    }
    const first = form.querySelector("input:not([type=checkbox]), textarea, select:not(#prompt-version)");
    if (first) {
      first.focus();
    } else {
      form.querySelector("button[type=submit]").focus();
    }
  }

  function showErrors(form, message, problems) {
    const box = form.querySelector("#prompt-values-error");
    box.textContent = message;
    box.hidden = !message;
    form.querySelectorAll(".field .errors[data-client]").forEach((el) => el.remove());
    Object.entries(problems || {}).forEach(([name, problem]) => {
      const input = form.querySelector(`[name="v-${CSS.escape(name)}"]`);
      if (!input) return;
      const note = document.createElement("ul");
      note.className = "errors";
      note.dataset.client = "1";
      note.setAttribute("role", "alert");
      const item = document.createElement("li");
      item.textContent = problem === "missing" ? "Fill this in." : problem;
      note.append(item);
      input.closest(".field").append(note);
      input.setAttribute("aria-invalid", "true");
    });
  }

  function put(field, text) {
    field.value = text;
    field.dispatchEvent(new Event("input", { bubbles: true }));
  }

  async function insert(form) {
    const variables = {};
    const missing = {};
    form.querySelectorAll("[name^='v-']").forEach((input) => {
      variables[input.name.slice(2)] = input.value;
      if (input.required && !input.value.trim()) missing[input.name.slice(2)] = "missing";
    });
    if (Object.keys(missing).length) {
      // Said at once, before asking the server (which says the same, and checks types too).
      const names = Object.keys(missing).map((name) => `“${name}”`).join(", ");
      showErrors(form, `Missing ${names}.`, missing);
      form.querySelector("[aria-invalid=true]").focus();
      return;
    }
    // A page that keeps what was inserted (the playground: the comparison remembers the version
    // and the values, so its runs count for it) renders and saves through its own URL.
    const useSystem = form.querySelector("[name=use_system]");
    const applyUrl = dialog.dataset.applyUrl;
    const request = { version: form.querySelector("#prompt-version").value, variables };
    if (applyUrl) {
      request.template = Number(form.dataset.pk);
      request.use_system = Boolean(useSystem && useSystem.checked);
    }
    const response = await fetch(applyUrl || urlWith(dialog.dataset.renderUrl, form.dataset.pk), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(request),
    });
    let body = {};
    try {
      body = await response.json();
    } catch (e) {
      body = {};
    }
    if (!response.ok) {
      const error = body.error || {};
      showErrors(form, error.message || `Couldn't render (${response.status}).`, error.fields && error.fields.variables);
      return;
    }
    const box = target();
    if (box) {
      let text = body.user;
      if (slashStart !== null && box.value.startsWith("/")) {
        slashStart = null; // the "/query" is replaced by the prompt
      } else if (applyUrl) {
        // Saved as the whole prompt: the box shows exactly what was saved.
      } else if (box.value.trim()) {
        text = `${box.value.replace(/\s+$/, "")}\n\n${body.user}`;
      }
      put(box, text);
      box.dataset.promptVersion = String(body.version_id);
    }
    const systemField = dialog.dataset.system && document.querySelector(dialog.dataset.system);
    if (useSystem && useSystem.checked && systemField) {
      put(systemField, body.system);
      const systemForm = dialog.dataset.systemForm && document.querySelector(dialog.dataset.systemForm);
      if (systemForm) systemForm.requestSubmit();
    }
    close();
    if (box) {
      box.focus();
      box.setSelectionRange(box.value.length, box.value.length);
    }
  }

  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-prompt-picker]")) {
      slashStart = null;
      open("");
    } else if (event.target.closest("[data-dialog-close]")) {
      close();
    } else if (event.target.closest("[data-prompt-back]")) {
      open(search.value);
    } else {
      const option = event.target.closest("#prompt-results [role=option]");
      if (option) choose(option.dataset.pk);
    }
  });

  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => load(search.value.trim()), 150);
  });

  search.addEventListener("keydown", (event) => {
    const all = options();
    const current = all.findIndex((o) => o.getAttribute("aria-selected") === "true");
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!all.length) return;
      const step = event.key === "ArrowDown" ? 1 : -1;
      select(all[(current + step + all.length) % all.length]);
    } else if (event.key === "Enter") {
      event.preventDefault();
      if (current >= 0) choose(all[current].dataset.pk);
    }
  });

  dialog.addEventListener("change", (event) => {
    if (event.target.id === "prompt-version") {
      choose(event.target.closest("form").dataset.pk, event.target.value);
    }
  });

  dialog.addEventListener("submit", (event) => {
    if (event.target.id === "prompt-values") {
      event.preventDefault();
      insert(event.target);
    }
  });

  // "/" typed into an empty text box opens the picker, searching for what follows it.
  if (dialog.dataset.slash === "1") {
    document.addEventListener("input", (event) => {
      const box = target();
      if (event.target !== box || dialog.open) return;
      const match = /^\/(\S*)$/.exec(box.value);
      if (match && event.inputType && event.inputType.startsWith("insert")) {
        slashStart = 0;
        open(match[1]);
      }
    });
  }
}

// --- Save as prompt ---------------------------------------------------------------------------

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-save-prompt]");
  if (!button) return;
  const form = document.getElementById("save-prompt-form");
  if (!form) return;
  let system = "";
  let user = "";
  let name = "";
  if (button.dataset.savePrompt === "system") {
    const field = document.getElementById("id_system_prompt");
    system = field ? field.value : "";
    name = "System prompt";
  } else {
    const message = button.closest("article.msg");
    const raw = message && message.querySelector("template.msg-raw");
    user = raw ? raw.content.textContent : "";
    name = user.trim().split("\n")[0].slice(0, 60) || "Saved message";
  }
  form.elements.name.value = name;
  form.elements.system_text.value = system;
  form.elements.user_text.value = user;
  form.submit();
});
