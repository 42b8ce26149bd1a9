// "Try it" on a credential page: POST /api/completions with stream=true and render the
// Server-Sent Events as they arrive (plain text; the chat renders Markdown).

function csrfToken(form) {
  const input = form.querySelector("[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

function describe(finished) {
  const parts = [];
  const usage = finished.usage;
  parts.push(`${usage.input_tokens} in / ${usage.output_tokens} out tokens${usage.estimated ? " (estimated)" : ""}`);
  parts.push(finished.cost.display); // billing.money's label: "$0.00042", "unpriced", "$0.00 local"
  if (finished.timing.ttft_ms !== null) parts.push(`TTFT ${Math.round(finished.timing.ttft_ms)} ms`);
  if (finished.timing.tokens_per_second) parts.push(`${finished.timing.tokens_per_second.toFixed(1)} tok/s`);
  if (finished.attempts > 1) parts.push(`${finished.attempts} attempts`);
  return parts.join(" · ");
}

async function send(form) {
  const card = form.closest(".card");
  const output = card.querySelector(".try-output");
  const reply = output.querySelector(".reply");
  const meta = output.querySelector(".try-meta");
  const button = form.querySelector("button[type=submit]");
  output.hidden = false;
  output.classList.remove("failed");
  reply.textContent = "";
  meta.textContent = "Waiting for the first token…";
  button.disabled = true;
  const body = {
    credential: Number(form.dataset.credential),
    model: form.model.value.trim(),
    system: form.system.value,
    messages: [{ role: "user", content: form.message.value }],
    stream: true,
  };
  try {
    const response = await fetch("/api/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(form), Accept: "text/event-stream" },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    if (!response.ok) {
      const data = await response.json().catch(() => ({}));
      throw new Error((data.error && data.error.message) || `HTTP ${response.status}`);
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const event = /^event: (.*)$/m.exec(block);
        const data = /^data: (.*)$/m.exec(block);
        if (!event || !data) continue;
        const payload = JSON.parse(data[1]);
        if (event[1] === "delta") {
          if (!reply.textContent) meta.textContent = "Streaming…";
          reply.textContent += payload.text;
        } else if (event[1] === "finished") {
          meta.textContent = describe(payload);
        } else if (event[1] === "error") {
          output.classList.add("failed");
          meta.textContent = `${payload.code}: ${payload.message}`;
        }
      }
    }
  } catch (error) {
    output.classList.add("failed");
    meta.textContent = error.message;
  } finally {
    button.disabled = false;
  }
}

document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-try]");
  if (!form) return;
  event.preventDefault();
  send(form);
});

document.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    const form = event.target.closest("form[data-try]");
    if (form) {
      event.preventDefault();
      form.requestSubmit();
    }
  }
});
