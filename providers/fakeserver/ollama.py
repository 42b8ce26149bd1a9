"""Ollama's native API (/api/...): NDJSON chat plus the model management Ollama adds (tags, show)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from .formats import Chat, ChatParams, dumps
from .knobs import Knobs, embedding_vector, prompt_tokens

MODIFIED_AT = "2025-01-15T10:00:00.000000Z"


class OllamaFormat:
    """Ollama's native API: NDJSON lines, counts and nanosecond durations on the `done` line."""

    name = "ollama"
    id_prefix = "ollama-fake"
    stream_type = "application/x-ndjson"

    def parse_chat(self, body: dict[str, Any]) -> ChatParams:
        options = body.get("options") or {}
        num_predict = options.get("num_predict") if isinstance(options, dict) else None
        return ChatParams(
            model=str(body.get("model") or ""),
            prompt_tokens=prompt_tokens(body.get("messages")),
            max_tokens=num_predict if num_predict is not None and num_predict >= 0 else None,
            stream=body.get("stream", True) is not False,  # Ollama streams unless told not to
        )

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return {"error": message}

    def _line(self, chat: Chat, text: str, done: bool, thinking: str = "") -> dict[str, Any]:
        message = {"role": "assistant", "content": text}
        if thinking:
            message["thinking"] = thinking
        return {
            "model": chat.model,
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "message": message,
            "done": done,
        }

    def _done(self, chat: Chat, text: str, sent: int, now: float) -> dict[str, Any]:
        line = self._line(chat, text, True)
        line["done_reason"] = "length" if chat.truncated else "stop"
        if chat.usage:
            first = chat.first_token_at or now
            ns = 1_000_000_000
            line |= {
                "total_duration": int((now - chat.started) * ns),
                "load_duration": 0,  # the model is always "loaded"
                "prompt_eval_count": chat.prompt_tokens,
                "prompt_eval_duration": int(max(first - chat.started, 0) * ns),
                "eval_count": sent,
                "eval_duration": int(max(now - first, 0) * ns),
            }
        return line

    def stream_head(self, chat: Chat) -> bytes:
        return b""

    def stream_delta(self, chat: Chat, text: str, first: bool) -> bytes:
        return dumps(self._line(chat, text, False)) + b"\n"

    def stream_reasoning(self, chat: Chat, text: str) -> bytes:
        return dumps(self._line(chat, "", False, thinking=text)) + b"\n"

    def stream_tail(self, chat: Chat, sent: int, now: float) -> bytes:
        return dumps(self._done(chat, "", sent, now)) + b"\n"

    def stream_malformed(self, chat: Chat) -> bytes:
        return b'{"model":"%b","message":{"role":"assistant","content":\n' % chat.model.encode()

    def stream_error(self, chat: Chat) -> bytes:
        return dumps({"error": "an error was encountered while running the model (fake)"}) + b"\n"

    def completion(self, chat: Chat, now: float) -> dict[str, Any]:
        sent = len(chat.tokens) + len(chat.reasoning)
        line = self._done(chat, "".join(chat.tokens), sent, now)
        if chat.reasoning:
            line["message"]["thinking"] = "".join(chat.reasoning)
        return line

    def _entries(self, knobs: Knobs) -> list[dict[str, Any]]:
        entries = []
        for entry in knobs.models_for(self.name):
            info = {"name": entry} if isinstance(entry, str) else dict(entry)
            info.setdefault("family", info["name"].split(":")[0].rstrip("0123456789.-") or "llama")
            entries.append(info)
        return entries

    def _details(self, info: dict[str, Any]) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": info["family"],
            "families": [info["family"]],
            "parameter_size": info.get("parameter_size", "1B"),
            "quantization_level": info.get("quantization_level", "Q4_K_M"),
        }

    def model_list(self, knobs: Knobs) -> dict[str, Any]:
        models = [
            {
                "name": info["name"],
                "model": info["name"],
                "modified_at": MODIFIED_AT,
                "size": info.get("size", 1_000_000_000),
                "digest": hashlib.sha256(info["name"].encode()).hexdigest(),
                "details": self._details(info),
            }
            for info in self._entries(knobs)
        ]
        return {"models": models}

    def show(self, name: str, knobs: Knobs) -> dict[str, Any] | None:
        """`/api/show` for a listed model (a name without a tag means `:latest`), else None."""
        wanted = {name, f"{name}:latest"}
        for info in self._entries(knobs):
            if info["name"] in wanted:
                family = info["family"]
                return {
                    "license": "",
                    "modelfile": f"FROM {info['name']}\n",
                    "parameters": "",
                    "template": "{{ .Prompt }}",
                    "details": self._details(info),
                    "model_info": {
                        "general.architecture": family,
                        "general.parameter_count": 1_000_000_000,
                        f"{family}.context_length": info.get("context_length", 8192),
                        f"{family}.embedding_length": info.get("embedding_length", 2048),
                    },
                    "capabilities": info.get("capabilities", ["completion"]),
                    "modified_at": MODIFIED_AT,
                }
        return None

    def embeddings(self, body: dict[str, Any], knobs: Knobs) -> dict[str, Any]:
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else [str(x) for x in inputs or []]
        dim = int(body.get("dimensions") or knobs.embedding_dim)
        reply: dict[str, Any] = {
            "model": body.get("model"),
            "embeddings": [embedding_vector(text, dim) for text in texts],
        }
        if knobs.usage:
            reply |= {
                "total_duration": 1_000_000,
                "load_duration": 100_000,
                "prompt_eval_count": sum(prompt_tokens([{"content": t}]) for t in texts),
            }
        return reply


OLLAMA = OllamaFormat()
