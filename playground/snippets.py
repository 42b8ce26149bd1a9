""" "Export as code": the exact request an answer was made with — model, parameters, system
prompt and messages — as cURL, Python (the openai SDK or the provider's own), TypeScript (the
Vercel AI SDK) and JavaScript (LangChain).

The key is always an environment variable; nothing here reads a stored key (the snippet is built
from the answer's snapshot and the credential's public fields only). A base URL with a user name
or password in it is shown without them.

Wire formats are code (DESIGN §3): one builder per adapter module, never per vendor. A second
target — this instance's own OpenAI-compatible gateway (`/v1`, issue 11) — reuses the OpenAI
builders (`gateway_export`): cURL and Python with a Workbench API token from an environment
variable; it works for every credential the gateway can name, Echo included."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from providers import presets

ANTHROPIC_VERSION = "2023-06-01"
ANTHROPIC_DEFAULT_MAX_TOKENS = 4096  # what our adapter sends when the answer set none


@dataclass(frozen=True)
class Target:
    """Where the snippet sends the request."""

    adapter: str  # openai_compat | anthropic | groq | ollama | echo
    base_url: str
    key_env: str | None  # None: the host needs no key
    label: str
    model: str
    provider_key: str  # the preset's key (which AI SDK / LangChain package fits)


@dataclass(frozen=True)
class Snippet:
    language: str  # curl | python | typescript | javascript
    title: str
    code: str
    runnable: bool = True


def _public_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        parts = parts._replace(netloc=host)
    return urlunsplit(parts).rstrip("/")


def provider_target(*, preset_key: str, base_url: str, model: str, local: bool = False) -> Target:
    preset = presets.PRESETS.get(preset_key) or presets.get("openai_compatible")
    # Keys are for hosted services; a local server (Ollama, vLLM on the LAN) usually has none.
    needs_key = preset.needs_key or not local
    return Target(
        adapter=preset.adapter,
        base_url=_public_url(base_url or preset.default_base_url),
        key_env=f"{preset.key.upper()}_API_KEY" if needs_key else None,
        label=preset.label,
        model=model,
        provider_key=preset.key,
    )


GATEWAY_KEY_ENV = "WORKBENCH_API_KEY"


@dataclass(frozen=True)
class GatewayExport:
    """The same call through this instance's OpenAI-compatible gateway (`/v1`): the model as
    `<credential slug>/<model id>`, a Workbench API token (`wb_…`) from an environment variable
    as the key. `note`: why the name might not reach this very credential."""

    target: Target
    snippets: list[Snippet]
    note: str = ""


def workbench_target(*, site_url: str, credential, model: str) -> Target | None:
    """Our own OpenAI-compatible endpoint at `site_url` + `/v1` (the operator's
    WORKBENCH_SITE_URL: what people reach, never a request's Host). None for a credential the
    gateway can't name (no slug) or an answer with no model."""
    if credential is None or not credential.slug or not model:
        return None
    return Target(
        adapter="openai_compat",
        base_url=f"{_public_url(site_url)}/v1",
        key_env=GATEWAY_KEY_ENV,
        label="this Workbench's OpenAI-compatible gateway",
        model=f"{credential.slug}/{model}",
        provider_key="workbench",
    )


def _gateway_call(call: Call, credential) -> Call:
    """What the gateway accepts for this credential's models: `seed` only where the adapter
    honours it (the gateway refuses it with a 400 elsewhere, rather than ignore it)."""
    from providers.adapters import adapter_class

    preset = presets.PRESETS.get(credential.preset)
    if preset is None or "seed" not in call.params:
        return call
    if adapter_class(preset).supports_seed and "no_seed" not in preset.quirks:
        return call
    return Call(
        system=call.system,
        messages=call.messages,
        params={k: v for k, v in call.params.items() if k != "seed"},
    )


def gateway_export(
    *, site_url: str, user, credential, model: str, call: Call
) -> GatewayExport | None:
    """cURL and Python (openai SDK) through the gateway, for `user` (who must be able to name
    the credential: a personal credential with the same slug as a team's wins in the gateway)."""
    from providers.gateway.names import AmbiguousModel, UnknownModel, model_resolve

    target = workbench_target(site_url=site_url, credential=credential, model=model)
    if target is None:
        return None
    call = _gateway_call(call, credential)
    note = ""
    try:
        resolved = model_resolve(user=user, name=target.model)
    except (UnknownModel, AmbiguousModel):
        resolved = None
    if resolved is None or resolved.credential_id != credential.pk:
        note = (
            f"“{target.model}” names another of your credentials in the gateway (your own "
            "credential wins over a team's with the same slug); rename one of them, or use an "
            "alias, to call this one."
        )
    return GatewayExport(target, [_curl(target, call), _python(target, call)], note)


@dataclass(frozen=True)
class Call:
    """The request, provider-neutral: what the answer was sent."""

    system: str
    messages: list[dict]  # {"role": "user" | "assistant", "content": str}
    params: dict  # temperature, top_p, max_tokens, seed


def _s(value: str) -> str:
    """A string literal valid in Python, JavaScript and TypeScript."""
    return json.dumps(value, ensure_ascii=False)


def _all_messages(call: Call) -> list[dict]:
    head = [{"role": "system", "content": call.system}] if call.system else []
    return head + call.messages


def _indent_json(value, indent: int) -> str:
    text = json.dumps(value, ensure_ascii=False, indent=2)
    return text.replace("\n", "\n" + " " * indent)


# --- cURL --------------------------------------------------------------------------------------------


def _curl(target: Target, call: Call) -> Snippet:
    p = call.params
    headers = ["Content-Type: application/json"]
    if target.adapter == "anthropic":
        url = f"{target.base_url}/v1/messages"
        body = {
            "model": target.model,
            "max_tokens": p.get("max_tokens") or ANTHROPIC_DEFAULT_MAX_TOKENS,
        }
        if call.system:
            body["system"] = call.system
        body["messages"] = call.messages
        body.update({k: p[k] for k in ("temperature", "top_p") if p.get(k) is not None})
        if target.key_env:
            headers.append(f"x-api-key: ${target.key_env}")
        headers.append(f"anthropic-version: {ANTHROPIC_VERSION}")
    elif target.adapter == "ollama":
        url = f"{target.base_url}/api/chat"
        options = {
            "temperature": p.get("temperature"),
            "top_p": p.get("top_p"),
            "num_predict": p.get("max_tokens"),
            "seed": p.get("seed"),
        }
        body = {"model": target.model, "messages": _all_messages(call), "stream": False}
        options = {k: v for k, v in options.items() if v is not None}
        if options:
            body["options"] = options
        if target.key_env:
            headers.append(f"Authorization: Bearer ${target.key_env}")
    else:
        path = "/openai/v1/chat/completions" if target.adapter == "groq" else "/chat/completions"
        url = f"{target.base_url}{path}"
        body = {"model": target.model, "messages": _all_messages(call)}
        quirks = (
            presets.PRESETS[target.provider_key].quirks
            if target.provider_key in presets.PRESETS
            else frozenset()
        )
        for key in ("temperature", "top_p", "max_tokens", "seed"):
            if p.get(key) is not None and not (key == "seed" and "no_seed" in quirks):
                body[key] = p[key]
        if target.key_env:
            headers.append(f"Authorization: Bearer ${target.key_env}")
    lines = [f"curl {shlex.quote(url)}"]
    # Double quotes around headers so the shell expands the key's variable; the body is literal.
    lines += [f'  -H "{header}"' for header in headers]
    payload = json.dumps(body, ensure_ascii=False, indent=2).replace("'", "'\\''")
    lines.append(f"  -d '{payload}'")
    return Snippet("curl", "cURL", " \\\n".join(lines))


# --- Python --------------------------------------------------------------------------------------------


def _py_kwargs(pairs: list[tuple[str, object]]) -> str:
    return "".join(f"    {name}={value!r},\n" for name, value in pairs if value is not None)


def _python(target: Target, call: Call) -> Snippet:
    p = call.params
    key = f'os.environ["{target.key_env}"]' if target.key_env else '"not-needed"'
    if target.adapter == "anthropic":
        # The SDK takes no sampling keywords any more; the API still does (as our adapter sends).
        extra = {k: p[k] for k in ("temperature", "top_p") if p.get(k) is not None}
        sampling = f"    extra_body={extra!r},\n" if extra else ""
        code = (
            "import os\n\nimport anthropic\n\n"
            f"client = anthropic.Anthropic(base_url={_s(target.base_url)}, api_key={key})\n\n"
            "with client.messages.stream(\n"
            f"    model={_s(target.model)},\n"
            f"    max_tokens={p.get('max_tokens') or ANTHROPIC_DEFAULT_MAX_TOKENS},\n"
            + (f"    system={_s(call.system)},\n" if call.system else "")
            + f"    messages={_indent_json(call.messages, 4)},\n"
            + sampling
            + ") as stream:\n"
            "    for text in stream.text_stream:\n"
            '        print(text, end="", flush=True)\n'
            "print()\n"
        )
        return Snippet("python", "Python (anthropic SDK)", code)
    if target.adapter == "ollama":
        options = {
            "temperature": p.get("temperature"),
            "top_p": p.get("top_p"),
            "num_predict": p.get("max_tokens"),
            "seed": p.get("seed"),
        }
        options = {k: v for k, v in options.items() if v is not None}
        code = (
            "from ollama import Client\n\n"
            f"client = Client(host={_s(target.base_url)})\n\n"
            "for part in client.chat(\n"
            f"    model={_s(target.model)},\n"
            f"    messages={_indent_json(_all_messages(call), 4)},\n"
            + (f"    options={options!r},\n" if options else "")
            + "    stream=True,\n"
            "):\n"
            '    print(part["message"]["content"], end="", flush=True)\n'
            "print()\n"
        )
        return Snippet("python", "Python (ollama SDK)", code)
    sdk, cls = ("groq", "Groq") if target.adapter == "groq" else ("openai", "OpenAI")
    quirks = (
        presets.PRESETS[target.provider_key].quirks
        if target.provider_key in presets.PRESETS
        else frozenset()
    )
    code = (
        f"import os\n\nfrom {sdk} import {cls}\n\n"
        f"client = {cls}(base_url={_s(target.base_url)}, api_key={key})\n\n"
        "stream = client.chat.completions.create(\n"
        f"    model={_s(target.model)},\n"
        f"    messages={_indent_json(_all_messages(call), 4)},\n"
        + _py_kwargs(
            [
                ("temperature", p.get("temperature")),
                ("top_p", p.get("top_p")),
                ("max_tokens", p.get("max_tokens")),
                ("seed", None if "no_seed" in quirks else p.get("seed")),
            ]
        )
        + "    stream=True,\n"
        ")\n"
        "for chunk in stream:\n"
        "    if chunk.choices and chunk.choices[0].delta.content:\n"
        '        print(chunk.choices[0].delta.content, end="", flush=True)\n'
        "print()\n"
    )
    return Snippet("python", f"Python ({sdk} SDK)", code)


# --- TypeScript: Vercel AI SDK (v5) ----------------------------------------------------------------


def _env(target: Target) -> str:
    return f"process.env.{target.key_env}" if target.key_env else '"not-needed"'


def _typescript(target: Target, call: Call) -> Snippet:
    p = call.params
    if target.adapter == "anthropic":
        setup = (
            'import { createAnthropic } from "@ai-sdk/anthropic";\n\n'
            f"const provider = createAnthropic({{ baseURL: {_s(target.base_url + '/v1')}, apiKey: {_env(target)} }});\n"
        )
        model = f"provider({_s(target.model)})"
    elif target.adapter == "ollama":
        setup = (
            'import { createOllama } from "ollama-ai-provider-v2";\n\n'
            f"const provider = createOllama({{ baseURL: {_s(target.base_url + '/api')} }});\n"
        )
        model = f"provider({_s(target.model)})"
    elif target.provider_key == "openai":
        setup = (
            'import { createOpenAI } from "@ai-sdk/openai";\n\n'
            f"const provider = createOpenAI({{ baseURL: {_s(target.base_url)}, apiKey: {_env(target)} }});\n"
        )
        model = f"provider.chat({_s(target.model)})"
    else:
        base = target.base_url + ("/openai/v1" if target.adapter == "groq" else "")
        setup = (
            'import { createOpenAICompatible } from "@ai-sdk/openai-compatible";\n\n'
            "const provider = createOpenAICompatible({\n"
            f"  name: {_s(target.provider_key)},\n"
            f"  baseURL: {_s(base)},\n"
            f"  apiKey: {_env(target)},\n"
            "});\n"
        )
        model = f"provider({_s(target.model)})"
    options = [
        ("temperature", p.get("temperature")),
        ("topP", p.get("top_p")),
        ("maxOutputTokens", p.get("max_tokens")),
        ("seed", p.get("seed") if target.adapter != "anthropic" else None),
    ]
    code = (
        'import { streamText } from "ai";\n' + setup + "\nconst result = streamText({\n"
        f"  model: {model},\n"
        + (f"  system: {_s(call.system)},\n" if call.system else "")
        + f"  messages: {_indent_json(call.messages, 2)},\n"
        + "".join(
            f"  {name}: {json.dumps(value)},\n" for name, value in options if value is not None
        )
        + "});\n\n"
        "for await (const text of result.textStream) process.stdout.write(text);\n"
        'process.stdout.write("\\n");\n'
    )
    return Snippet("typescript", "TypeScript (Vercel AI SDK)", code)


# --- JavaScript: LangChain ----------------------------------------------------------------------------


def _javascript(target: Target, call: Call) -> Snippet:
    p = call.params
    fields: list[tuple[str, str]] = [("model", _s(target.model))]
    if target.adapter == "anthropic":
        head = 'import { ChatAnthropic } from "@langchain/anthropic";\n'
        cls = "ChatAnthropic"
        fields += [("apiKey", _env(target)), ("anthropicApiUrl", _s(target.base_url))]
        fields += [
            ("temperature", json.dumps(p.get("temperature"))),
            ("topP", json.dumps(p.get("top_p"))),
            ("maxTokens", json.dumps(p.get("max_tokens") or ANTHROPIC_DEFAULT_MAX_TOKENS)),
        ]
    elif target.adapter == "ollama":
        head = 'import { ChatOllama } from "@langchain/ollama";\n'
        cls = "ChatOllama"
        fields += [("baseUrl", _s(target.base_url))]
        fields += [
            ("temperature", json.dumps(p.get("temperature"))),
            ("topP", json.dumps(p.get("top_p"))),
            ("numPredict", json.dumps(p.get("max_tokens"))),
            ("seed", json.dumps(p.get("seed"))),
        ]
    else:
        head = 'import { ChatOpenAI } from "@langchain/openai";\n'
        cls = "ChatOpenAI"
        base = target.base_url + ("/openai/v1" if target.adapter == "groq" else "")
        fields += [("apiKey", _env(target)), ("configuration", f"{{ baseURL: {_s(base)} }}")]
        fields += [
            ("temperature", json.dumps(p.get("temperature"))),
            ("topP", json.dumps(p.get("top_p"))),
            ("maxTokens", json.dumps(p.get("max_tokens"))),
        ]
        if p.get("seed") is not None:
            fields.append(("modelKwargs", f"{{ seed: {json.dumps(p['seed'])} }}"))
    shown = "".join(f"  {name}: {value},\n" for name, value in fields if value != "null")
    code = (
        head
        + f"\nconst model = new {cls}({{\n{shown}}});\n\n"
        + f"const stream = await model.stream({_indent_json(_all_messages(call), 0)});\n"
        "for await (const chunk of stream) process.stdout.write(chunk.content);\n"
        'process.stdout.write("\\n");\n'
    )
    return Snippet("javascript", "JavaScript (LangChain)", code)


def snippets_for(target: Target, call: Call) -> list[Snippet]:
    if target.adapter == "echo":
        return []
    return [
        _curl(target, call),
        _python(target, call),
        _typescript(target, call),
        _javascript(target, call),
    ]


def call_for_answer(answer) -> Call:
    run = answer.run
    messages = [{"role": t["role"], "content": t["content"]} for t in run.history]
    messages.append({"role": "user", "content": run.prompt})
    params = {k: v for k, v in (answer.params or {}).items() if v is not None}
    return Call(system=answer.system_prompt, messages=messages, params=params)


def target_for_answer(answer) -> Target:
    credential = answer.credential
    return provider_target(
        preset_key=answer.preset,
        base_url=credential.effective_base_url if credential is not None else "",
        model=answer.model,
        local=credential.is_local if credential is not None else False,
    )
