// Streaming replies, rendered as they grow.
//
// The server renders a streaming reply's Markdown (the same renderer and sanitizer as the final
// one) and sends it with the text: finished blocks once, the growing last block on each frame
// (chats/progressive.py). This module keeps, per streaming message, its text (to place deltas by
// offset), the nodes of each finished block and the nodes of the tail, so a frame only swaps
// the tail. The final frame's HTML replaces the message when the reply ends.

function nodesOf(html) {
  const template = document.createElement("template");
  template.innerHTML = html;
  return [...template.content.childNodes];
}

export class Streams {
  constructor(root) {
    this.root = root;
    this.byId = new Map();
  }

  // The stream of message `id`, set up from its element (as served, or as `started` made it).
  get(id) {
    const el = document.getElementById(`message-${id}`);
    if (!el) return null;
    let stream = this.byId.get(String(id));
    if (stream && stream.el === el) return stream;
    const content = el.querySelector(".content");
    if (!content) return null;
    content.className = "content markdown streaming";
    const raw = el.querySelector("template.msg-raw");
    stream = {
      el,
      content,
      text: raw ? raw.content.textContent : "",
      v: 0,
      blocks: [],
      tail: [...content.childNodes], // what was served (a checkpoint) until a rendering arrives
    };
    this.byId.set(String(id), stream);
    return stream;
  }

  // Text by offset (deltas may overlap what a snapshot already had); then the rendering.
  delta(frame) {
    const stream = this.get(frame.id);
    if (!stream) return false;
    const have = stream.text.length;
    if (frame.offset <= have && frame.offset + frame.text.length > have) {
      stream.text += frame.text.slice(have - frame.offset);
    }
    if (frame.html) this.render(stream, frame.html);
    return true;
  }

  snapshot(frame) {
    const stream = this.get(frame.id);
    if (!stream) return;
    stream.text = frame.text;
    if (frame.html) this.render(stream, frame.html);
  }

  render(stream, html) {
    if (html.v <= stream.v) return; // older than what is shown
    if (html.from > stream.blocks.length) return; // missed blocks: the next whole one repairs it
    stream.tail.forEach((node) => node.remove());
    stream.blocks.splice(html.from).flat().forEach((node) => node.remove());
    for (const block of html.blocks) {
      const nodes = nodesOf(block);
      stream.content.append(...nodes);
      stream.blocks.push(nodes);
    }
    stream.tail = nodesOf(html.tail);
    stream.content.append(...stream.tail);
    stream.v = html.v;
  }

  text(id) {
    const stream = this.byId.get(String(id));
    return stream ? stream.text : null;
  }

  forget(id) {
    this.byId.delete(String(id));
  }
}
