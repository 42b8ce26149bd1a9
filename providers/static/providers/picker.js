// The model picker: turns a <select data-picker> (which works without script) into a searchable
// combobox (WAI-ARIA combobox pattern with a listbox popup). The select stays in the form and
// keeps the value; the options' data attributes carry what the list shows (model, credential,
// context window and price, favourite, default, last used). Favourites are listed first; the
// star and "Default" buttons act on the chosen model. No inline script or style (CSP).

let serial = 0;

function csrfToken() {
  try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]; } catch (e) { return ""; }
}

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

function words(text) {
  return text.toLowerCase().split(/\s+/).filter(Boolean);
}

class ModelPicker {
  constructor(select) {
    this.select = select;
    this.id = `picker-${++serial}`;
    this.previous = select.value;
    this.root = element("div", { class: "picker" });
    this.input = element("input", {
      type: "text", id: `${this.id}-input`, class: "picker-input", role: "combobox",
      "aria-controls": `${this.id}-list`, "aria-expanded": "false", "aria-autocomplete": "list",
      "aria-describedby": `${this.id}-detail`, autocomplete: "off", spellcheck: "false",
      "data-testid": `${select.dataset.testid || "model"}-combobox`,
    });
    this.popup = element("div", { class: "picker-popup", hidden: "" });
    this.list = element("div", { role: "listbox", id: `${this.id}-list`, class: "picker-list" });
    this.status = element("p", { class: "picker-status small muted", role: "status" });
    this.popup.append(this.list, this.status);
    this.detail = element("span", { id: `${this.id}-detail`, class: "picker-detail-line small muted" });
    this.star = element("button", { type: "button", class: "btn link small picker-star", "aria-pressed": "false", title: "Favourites are listed first" });
    this.star.append(element("span", { "aria-hidden": "true", class: "picker-star-glyph" }, "☆"), element("span", { class: "sr-only" }, "Favourite"));
    this.makeDefault = element("button", { type: "button", class: "btn link small picker-default", "aria-pressed": "false" }, "Default");
    const field = element("div", { class: "picker-field" });
    field.append(this.input, this.star, this.makeDefault);
    this.root.append(field, this.popup, this.detail);
    select.hidden = true;
    select.tabIndex = -1;
    select.after(this.root);
    const label = document.querySelector(`label[for="${select.id}"]`);
    if (label) label.htmlFor = this.input.id;

    this.input.addEventListener("keydown", (event) => this.keydown(event));
    this.input.addEventListener("input", () => { this.open(); this.filter(this.input.value); });
    this.input.addEventListener("click", () => (this.isOpen() ? this.close() : this.open(true)));
    this.list.addEventListener("mousedown", (event) => event.preventDefault()); // keep the focus
    this.list.addEventListener("click", (event) => {
      const option = event.target.closest("[role=option]");
      if (option) this.choose(option);
    });
    this.root.addEventListener("focusout", (event) => {
      if (!this.root.contains(event.relatedTarget)) this.close();
    });
    this.star.addEventListener("click", () => this.toggleFavourite());
    this.makeDefault.addEventListener("click", () => this.toggleDefault());
    select.addEventListener("picker:sync", () => this.sync());
    // A refused change on a conversation (htmx post of the select): back to what was there.
    select.addEventListener("htmx:responseError", () => {
      this.select.value = this.previous;
      this.sync();
      this.say("The model wasn't changed: that model can't be used for this chat.", true);
    });
    select.addEventListener("htmx:afterRequest", (event) => {
      if (event.detail.successful) { this.previous = this.select.value; this.say(""); }
    });
    this.sync();
  }

  // The usable options (those of the owner chosen on the new-chat page), favourites first.
  options() {
    return [...this.select.querySelectorAll("optgroup:not([disabled]) option, select > option")]
      .filter((option) => option.value);
  }

  isOpen() { return this.input.getAttribute("aria-expanded") === "true"; }

  build(query) {
    this.list.replaceChildren();
    const needles = words(query || "");
    const groups = new Map();
    let count = 0;
    const all = this.options();
    const favourites = all.filter((option) => "favourite" in option.dataset);
    const add = (key, label, option) => {
      const haystack = `${option.dataset.model} ${option.dataset.credential}`.toLowerCase();
      if (!needles.every((needle) => haystack.includes(needle))) return;
      if (!groups.has(key)) {
        const group = element("div", { role: "group", "aria-labelledby": `${this.id}-g${groups.size}` });
        group.append(element("div", { role: "presentation", class: "picker-group", id: `${this.id}-g${groups.size}` }, label));
        groups.set(key, group);
        this.list.append(group);
      }
      groups.get(key).append(this.optionFor(option, count++));
    };
    favourites.forEach((option) => add("*", "★ Favourites", option));
    all.filter((option) => !("favourite" in option.dataset)).forEach((option) => {
      const group = option.parentElement;
      add(group.label || "", group.label || "Models", option);
    });
    if (!all.length) this.status.textContent = "No models to pick from.";
    else if (!count) this.status.textContent = `No model matches “${query.trim()}”.`;
    else this.status.textContent = needles.length ? `${count} of ${all.length} models` : "";
    return count;
  }

  optionFor(option, index) {
    const item = element("div", {
      role: "option", id: `${this.id}-o${index}`, class: "picker-option",
      "aria-selected": option.selected ? "true" : "false", "data-value": option.value,
    });
    const name = element("span", { class: "picker-model" });
    if ("favourite" in option.dataset) name.append(element("span", { "aria-hidden": "true", class: "picker-star-glyph" }, "★ "));
    name.append(document.createTextNode(option.dataset.model));
    for (const [flag, text] of [["default", "default"], ["lastUsed", "last used"]]) {
      if (flag in option.dataset) name.append(" ", element("span", { class: "badge small" }, text));
    }
    item.append(name, element("span", { class: "picker-detail small muted" }, option.dataset.detail || ""));
    return item;
  }

  open(all = false) {
    if (this.isOpen()) return;
    this.input.setAttribute("aria-expanded", "true");
    this.popup.hidden = false;
    this.build("");
    if (all) this.input.select();
    this.activate(this.list.querySelector("[aria-selected=true]") || this.list.querySelector("[role=option]"));
  }

  close() {
    if (!this.isOpen()) return;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
    this.popup.hidden = true;
    this.showCurrent();
  }

  filter(query) {
    this.build(query);
    this.activate(this.list.querySelector("[role=option]"));
  }

  activate(item) {
    this.list.querySelectorAll(".active").forEach((node) => node.classList.remove("active"));
    if (!item) { this.input.removeAttribute("aria-activedescendant"); return; }
    item.classList.add("active");
    this.input.setAttribute("aria-activedescendant", item.id);
    item.scrollIntoView({ block: "nearest" });
  }

  move(step) {
    const items = [...this.list.querySelectorAll("[role=option]")];
    if (!items.length) return;
    const at = items.findIndex((item) => item.classList.contains("active"));
    this.activate(items[(at + step + items.length) % items.length]);
  }

  keydown(event) {
    if (event.isComposing) return;
    const active = this.list.querySelector(".active");
    switch (event.key) {
      case "ArrowDown":
        event.preventDefault();
        if (!this.isOpen()) this.open(true); else if (!event.altKey) this.move(1);
        break;
      case "ArrowUp":
        event.preventDefault();
        if (!this.isOpen()) this.open(true);
        else if (event.altKey && active) this.choose(active);
        else this.move(-1);
        break;
      case "PageDown": case "PageUp":
        if (this.isOpen()) { event.preventDefault(); this.move(event.key === "PageDown" ? 5 : -5); }
        break;
      case "Enter":
        event.preventDefault(); // never submits the new-chat form from here
        if (this.isOpen() && active) this.choose(active);
        else if (!this.isOpen()) this.open(true);
        break;
      case "Escape":
        // Closing the list is all Esc does here (it doesn't also stop a streaming reply).
        if (this.isOpen() || this.input.value !== this.label()) {
          event.preventDefault();
          event.stopPropagation();
          this.close();
          this.showCurrent();
        }
        break;
      case "Tab":
        this.close();
        break;
      default:
    }
  }

  choose(item) {
    const value = item.dataset.value;
    const changed = value !== this.select.value;
    this.select.value = value;
    this.close();
    this.input.select();
    if (changed) this.select.dispatchEvent(new Event("change", { bubbles: true }));
    this.sync();
  }

  current() { return this.select.selectedOptions[0] && this.select.selectedOptions[0].value ? this.select.selectedOptions[0] : null; }

  label() {
    const option = this.current();
    return option ? `${option.dataset.model} — ${option.dataset.credential}` : "";
  }

  showCurrent() {
    this.input.value = this.label();
    this.input.placeholder = this.options().length ? "Pick a model…" : "No models";
  }

  // The field, the buttons and the composer's placeholder follow the selected option.
  sync() {
    const option = this.current();
    this.showCurrent();
    this.detail.textContent = option ? option.dataset.detail || "" : "";
    this.star.hidden = !option || !this.select.dataset.favouriteUrl;
    const favourite = Boolean(option && "favourite" in option.dataset);
    this.star.setAttribute("aria-pressed", favourite ? "true" : "false");
    this.star.querySelector(".picker-star-glyph").textContent = favourite ? "★" : "☆";
    const group = option && option.parentElement.tagName === "OPTGROUP" ? option.parentElement : null;
    this.makeDefault.hidden = !group || !("canDefault" in group.dataset);
    const isDefault = Boolean(option && "default" in option.dataset);
    this.makeDefault.setAttribute("aria-pressed", isDefault ? "true" : "false");
    if (group) {
      const owner = group.dataset.ownerLabel === "Personal" ? "your personal" : `“${group.dataset.ownerLabel}”`;
      this.makeDefault.title = isDefault
        ? `New ${owner} chats start on this model. Press to clear.`
        : `Start new ${owner} chats on this model`;
    }
    const target = this.select.dataset.placeholderFor && document.getElementById(this.select.dataset.placeholderFor);
    if (target) target.placeholder = option ? `Message ${option.dataset.model}…` : "Pick a model first…";
    if (this.isOpen()) this.build(this.input.value === this.label() ? "" : this.input.value);
  }

  // An error shows under the picker (and above the composer) until the next change.
  say(text, error = false) {
    const box = document.getElementById("composer-error");
    if (box && error) { box.textContent = text; box.hidden = false; }
    this.detail.classList.toggle("error", error);
    if (error) this.detail.textContent = text;
    else { const option = this.current(); this.detail.textContent = option ? option.dataset.detail || "" : ""; }
  }

  async post(url, fields) {
    const body = new FormData();
    for (const [name, value] of Object.entries(fields)) body.append(name, value);
    const response = await fetch(url, { method: "POST", body, headers: { "X-CSRFToken": csrfToken() }, credentials: "same-origin" });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((data.error && data.error.message) || `Not saved (${response.status}).`);
    return data;
  }

  async toggleFavourite() {
    const option = this.current();
    if (!option) return;
    const [credential, ...model] = option.value.split("|");
    const favourite = !("favourite" in option.dataset);
    try {
      await this.post(this.select.dataset.favouriteUrl, { credential, model: model.join("|"), favourite: favourite ? "on" : "" });
    } catch (error) { this.say(error.message, true); return; }
    // The same model may be offered for several owners (new-chat page): star them all.
    this.select.querySelectorAll("option").forEach((other) => {
      if (other.value === option.value) {
        if (favourite) other.dataset.favourite = ""; else delete other.dataset.favourite;
      }
    });
    this.sync();
  }

  async toggleDefault() {
    const option = this.current();
    const group = option && option.parentElement;
    if (!group) return;
    const [credential, ...model] = option.value.split("|");
    const clear = "default" in option.dataset;
    try {
      await this.post(this.select.dataset.defaultUrl, {
        credential, model: model.join("|"), team: group.dataset.team || "", clear: clear ? "on" : "",
      });
    } catch (error) { this.say(error.message, true); return; }
    this.select.querySelectorAll(`optgroup[data-owner="${group.dataset.owner}"] option`).forEach((other) => {
      delete other.dataset.default;
    });
    if (!clear) option.dataset.default = "";
    this.sync();
  }
}

document.querySelectorAll("select[data-picker]").forEach((select) => new ModelPicker(select));
