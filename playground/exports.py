"""A run as JSON, CSV (one row per answer) and Markdown: the input, the shared context a grounded
run retrieved (chunk ids, sources, retrieval scores), and per answer the model, parameters, text,
status, tokens, cost with its provenance, timings and "RAG quality" scores. Built from the run's
own snapshot; no credential's key is ever read."""

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
    # Grounded runs: the shared context every answer got, and the judge's scores of this one.
    "retrieved_chunk_ids",
    "retrieved_sources",
    "faithfulness",
    "faithfulness_reason",
    "relevance",
    "relevance_reason",
    "judge_model",
    "judge_error",
)


def _provider(preset: str) -> str:
    row = presets.PRESETS.get(preset)
    return row.label if row else preset


def _number(value):
    return money.decimal_str(value)


def _sources(run) -> list[dict]:
    return list(((run.retrieval or {}).get("sources")) or [])


def source_label(source: dict) -> str:
    """“[1] kyoto.md p. 2 § Intro (chunk 12, collection 3, score 0.032787)”."""
    label = f"[{source.get('n')}] {source.get('title', '')}"
    if source.get("page"):
        label += f" p. {source['page']}"
    if source.get("heading"):
        label += f" § {source['heading']}"
    facts = [f"chunk {source.get('chunk')}", f"collection {source.get('collection')}"]
    for key in ("score", "similarity", "text_rank"):
        if source.get(key) is not None:
            facts.append(f"{key.replace('_', ' ')} {source[key]}")
    return f"{label} ({', '.join(facts)})"


def _judged(answer) -> dict:
    judge = answer.judge or {}
    row = {"judge_model": judge.get("model", ""), "judge_error": judge.get("error", "")}
    for metric in ("faithfulness", "relevance"):
        value = judge.get(metric) or {}
        row[metric] = value.get("score")
        row[f"{metric}_reason"] = value.get("reason", "")
    return row


def answer_row(answer, *, winner_id, sources: list[dict] | None = None) -> dict:
    params = answer.params or {}
    sources = sources or []
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
        "retrieved_chunk_ids": " ".join(str(src.get("chunk")) for src in sources),
        "retrieved_sources": "; ".join(source_label(src) for src in sources),
        **_judged(answer),
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
        # The shared context (None: the run had no collections): what every answer received,
        # its numbered sources with chunk ids and retrieval scores, and any notices.
        "retrieval": run.retrieval,
        "answers": [_json_answer(a, winner_id=run.winner_id) for a in _answers(run)],
    }


def _json_answer(answer, *, winner_id) -> dict:
    row = answer_row(answer, winner_id=winner_id)
    # The run's "retrieval" holds the sources, structured; the answer holds its verdict whole.
    del row["retrieved_chunk_ids"], row["retrieved_sources"]
    return {**row, "judge": answer.judge}


def as_csv(run) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS)
    writer.writeheader()
    sources = _sources(run)
    for answer in _answers(run):
        writer.writerow(
            {
                key: _spreadsheet_safe(value)
                for key, value in answer_row(
                    answer, winner_id=run.winner_id, sources=sources
                ).items()
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
    if run.retrieval is not None:
        sources = _sources(run)
        lines += ["## Shared context", ""]
        if sources:
            lines += [f"- {source_label(source)}" for source in sources] + [""]
        else:
            lines += ["_Nothing in the collections matched; the models answered without._", ""]
        for notice in run.retrieval.get("notices") or []:
            lines += [f"> {notice}", ""]
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
        if row["faithfulness"] is not None:
            facts.append(f"faithfulness {row['faithfulness']:.2f}")
        if row["relevance"] is not None:
            facts.append(f"relevance {row['relevance']:.2f}")
        if row["judge_error"]:
            facts.append(f"not judged: {row['judge_error']}")
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
