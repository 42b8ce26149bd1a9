"""A run as JSON, CSV (one row per answer) and Markdown: the input, and per answer the model,
parameters, text, status, tokens, cost with its provenance and timings. Built from the run's own
snapshot; no credential's key is ever read."""

from __future__ import annotations

import csv
import io
import json

from billing import money
from providers import presets

FIELDS = (
    "position",
    "provider",
    "credential",
    "model",
    "status",
    "finish_reason",
    "error_code",
    "error_message",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "reasoning_tokens",
    "tokens_estimated",
    "cost_usd",
    "cost_source",
    "estimate_usd",
    "ttft_ms",
    "tokens_per_second",
    "duration_ms",
    "rating",
    "note",
    "winner",
    "temperature",
    "top_p",
    "max_tokens",
    "seed",
    "system_prompt",
    "text",
)


def _provider(preset: str) -> str:
    row = presets.PRESETS.get(preset)
    return row.label if row else preset


def _number(value):
    return money.decimal_str(value)


def answer_row(answer, *, winner_id) -> dict:
    params = answer.params or {}
    return {
        "position": answer.position + 1,
        "provider": _provider(answer.preset),
        "credential": answer.credential_name,
        "model": answer.model,
        "status": answer.status,
        "finish_reason": answer.finish_reason,
        "error_code": answer.error_code,
        "error_message": answer.error_message,
        "input_tokens": answer.input_tokens,
        "output_tokens": answer.output_tokens,
        "cache_read_tokens": answer.cache_read_tokens,
        "reasoning_tokens": answer.reasoning_tokens,
        "tokens_estimated": answer.tokens_estimated,
        "cost_usd": _number(answer.cost),
        "cost_source": answer.cost_source,
        "estimate_usd": _number(answer.estimate),
        "ttft_ms": answer.ttft_ms,
        "tokens_per_second": answer.tokens_per_second,
        "duration_ms": answer.duration_ms,
        "rating": answer.rating,
        "note": answer.note,
        "winner": winner_id == answer.pk,
        "temperature": params.get("temperature"),
        "top_p": params.get("top_p"),
        "max_tokens": params.get("max_tokens"),
        "seed": params.get("seed"),
        "system_prompt": answer.system_prompt,
        "text": answer.text,
    }


def _answers(run):
    return list(run.answers.order_by("position", "id"))


def as_json(run) -> dict:
    comparison = run.comparison
    return {
        "run": {
            "id": run.pk,
            "number": run.number,
            "comparison": {"id": comparison.pk, "title": comparison.display_title}
            if comparison
            else None,
            "created_at": run.created_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "wall_ms": run.wall_ms,
            "estimate_usd": _number(run.estimate),
            "cost_usd": _number(run.cost_total),
            "has_unpriced": run.has_unpriced,
        },
        "input": {"system_prompt": run.system_prompt, "history": run.history, "prompt": run.prompt},
        "answers": [answer_row(a, winner_id=run.winner_id) for a in _answers(run)],
    }


def as_csv(run) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS)
    writer.writeheader()
    for answer in _answers(run):
        writer.writerow(
            {
                key: _spreadsheet_safe(value)
                for key, value in answer_row(answer, winner_id=run.winner_id).items()
            }
        )
    return out.getvalue()


def _spreadsheet_safe(value):
    """Model text must not become a formula in a spreadsheet (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def as_markdown(run) -> str:
    title = run.comparison.display_title if run.comparison else "Arena battle"
    lines = [f"# {title} — run {run.number}", ""]
    lines.append(f"- Started: {run.created_at:%Y-%m-%d %H:%M:%S %Z}")
    if run.wall_ms is not None:
        lines.append(f"- Wall time: {run.wall_ms / 1000:.2f} s (the slowest answer)")
    unpriced = sum(1 for a in _answers(run) if a.cost_source == "unpriced")
    lines.append(f"- Cost: {money.total_label(run.cost_total, unpriced=unpriced)}")
    lines += ["", "## Input", ""]
    if run.system_prompt:
        lines += ["**System**", "", run.system_prompt, ""]
    for turn in run.history:
        lines += [f"**{turn['role']}**", "", turn["content"], ""]
    lines += ["**user**", "", run.prompt, ""]
    for answer in _answers(run):
        row = answer_row(answer, winner_id=run.winner_id)
        crown = " 🏆 winner" if row["winner"] else ""
        lines += [f"## {row['position']}. {row['model']} · {row['provider']}{crown}", ""]
        facts = [f"status {row['status']}"]
        if row["input_tokens"] is not None:
            facts.append(
                f"{row['input_tokens']} in / {row['output_tokens']} out"
                + (" (estimated)" if row["tokens_estimated"] else "")
            )
        if row["cost_source"]:
            facts.append(money.cost_label(answer.cost, row["cost_source"]))
        if row["ttft_ms"] is not None:
            facts.append(f"TTFT {row['ttft_ms']:.0f} ms")
        if row["tokens_per_second"]:
            facts.append(f"{row['tokens_per_second']:.1f} tokens/s")
        if row["duration_ms"] is not None:
            facts.append(f"{row['duration_ms'] / 1000:.2f} s")
        if row["rating"]:
            facts.append(f"rated {row['rating']}/5")
        lines += ["*" + " · ".join(facts) + "*", ""]
        if row["error_code"] and row["status"] != "stopped":
            lines += [f"> Error `{row['error_code']}`: {row['error_message']}", ""]
        if row["note"]:
            lines += [f"> Note: {row['note']}", ""]
        lines += [answer.text or "_(no text)_", ""]
    return "\n".join(lines).rstrip() + "\n"


def as_text(run, fmt: str) -> tuple[str, str]:
    """(body, content type) for fmt json | csv | md."""
    if fmt == "json":
        return json.dumps(as_json(run), indent=2, ensure_ascii=False), "application/json"
    if fmt == "csv":
        return as_csv(run), "text/csv; charset=utf-8"
    return as_markdown(run), "text/markdown; charset=utf-8"
