"""Hosts are data: one row per provider host (DESIGN §3). A new OpenAI-compatible vendor is one
row here. The only place that names a provider; adapters never branch on it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    key: str
    label: str
    adapter: str  # a module in providers/adapters/: openai_compat, anthropic, groq, ollama, echo
    default_base_url: str = ""
    price_provider: str | None = None  # genai-prices provider id; None = no price data
    needs_key: bool = True
    local: bool = False  # runs on the user's hardware: calls cost $0 and are labelled local
    embeddings: bool = False
    key_hint: str = ""
    docs_url: str = ""
    # Wire-format quirks, as flags the adapters read:
    #   no_stream_options — the host rejects `stream_options` (usage comes unasked or not at all)
    #   no_seed           — the host rejects `seed`
    #   no_models_list    — the host has no model-listing endpoint; `static_models` is the catalogue
    quirks: frozenset[str] = frozenset()
    static_models: tuple[str, ...] = ()
    help: str = ""
    base_url_required: bool = False
    # Models that take images, as case-insensitive shell patterns on the model id ("*": all).
    # A catalogue entry's `details["vision"]` (an admin's override) wins either way.
    vision_models: tuple[str, ...] = ()

    @property
    def needs_network(self) -> bool:
        return self.adapter != "echo"

    @property
    def short_label(self) -> str:
        """The provider's name without the explanation: "Echo", not "Echo (local, no network)"."""
        return self.label.split(" (", 1)[0]


# Open-weight vision models by their usual names (Ollama tags, vLLM / LM Studio / Together ids).
OPEN_VISION_MODELS = (
    "*vision*",
    "*-vl*",
    "*vl-*",
    "*llava*",
    "gemma3*",
    "*gemma-3*",
    "qwen2.5vl*",
    "minicpm-v*",
    "moondream*",
    "llama4*",
    "*llama-4*",
    "*pixtral*",
    "mistral-small3.1*",
    "mistral-small3.2*",
)

PRESETS: dict[str, Preset] = {
    preset.key: preset
    for preset in [
        Preset(
            "echo",
            "Echo (local, no network)",
            "echo",
            needs_key=False,
            local=True,
            help="Streams back exactly what a model would receive — system prompt, history, "
            "injected context and parameters. Free, offline, great for debugging prompts.",
            static_models=("echo",),
            vision_models=("*",),
        ),
        Preset(
            "ollama",
            "Ollama",
            "ollama",
            "http://localhost:11434",
            needs_key=False,
            local=True,
            embeddings=True,
            help="Local models served by Ollama on this machine or your network.",
            vision_models=OPEN_VISION_MODELS,
            docs_url="https://github.com/ollama/ollama/blob/main/docs/api.md",
        ),
        Preset(
            "openai",
            "OpenAI",
            "openai_compat",
            "https://api.openai.com/v1",
            "openai",
            embeddings=True,
            key_hint="sk-…",
            docs_url="https://platform.openai.com/api-keys",
            vision_models=(
                "gpt-4o*",
                "chatgpt-4o*",
                "gpt-4.1*",
                "gpt-4-turbo*",
                "gpt-4.5*",
                "gpt-5*",
                "o1*",
                "o3*",
                "o4*",
            ),
        ),
        Preset(
            "anthropic",
            "Anthropic",
            "anthropic",
            "https://api.anthropic.com",
            "anthropic",
            key_hint="sk-ant-…",
            quirks=frozenset({"no_seed"}),
            docs_url="https://console.anthropic.com/settings/keys",
            vision_models=("claude-3*", "claude-sonnet*", "claude-opus*", "claude-haiku*"),
        ),
        Preset(
            "groq",
            "Groq",
            "groq",
            "https://api.groq.com",
            "groq",
            key_hint="gsk_…",
            docs_url="https://console.groq.com/keys",
            vision_models=("*llama-4*", "*vision*"),
        ),
        Preset(
            "gemini",
            "Google Gemini",
            "openai_compat",
            "https://generativelanguage.googleapis.com/v1beta/openai/",
            "google",
            embeddings=True,
            docs_url="https://aistudio.google.com/apikey",
            vision_models=("gemini-*", "gemma-3*"),
        ),
        Preset(
            "cohere",
            "Cohere",
            "openai_compat",
            "https://api.cohere.ai/compatibility/v1",
            "cohere",
            embeddings=True,
            quirks=frozenset({"no_stream_options"}),
            docs_url="https://dashboard.cohere.com/api-keys",
            vision_models=("*vision*",),
        ),
        Preset(
            "mistral",
            "Mistral",
            "openai_compat",
            "https://api.mistral.ai/v1",
            "mistral",
            embeddings=True,
            quirks=frozenset({"no_stream_options"}),
            docs_url="https://console.mistral.ai/api-keys",
            vision_models=("pixtral*", "mistral-medium*", "mistral-small-latest", "*vision*"),
        ),
        Preset(
            "together",
            "Together",
            "openai_compat",
            "https://api.together.xyz/v1",
            "together",
            embeddings=True,
            docs_url="https://api.together.xyz/settings/api-keys",
            vision_models=OPEN_VISION_MODELS,
        ),
        Preset(
            "perplexity",
            "Perplexity",
            "openai_compat",
            "https://api.perplexity.ai",
            "perplexity",
            key_hint="pplx-…",
            quirks=frozenset({"no_stream_options", "no_models_list"}),
            static_models=("sonar", "sonar-pro", "sonar-reasoning", "sonar-reasoning-pro"),
            docs_url="https://www.perplexity.ai/settings/api",
        ),
        Preset(
            "deepseek",
            "DeepSeek",
            "openai_compat",
            "https://api.deepseek.com/v1",
            "deepseek",
            docs_url="https://platform.deepseek.com/api_keys",
        ),
        Preset(
            "openrouter",
            "OpenRouter",
            "openai_compat",
            "https://openrouter.ai/api/v1",
            "openrouter",
            key_hint="sk-or-…",
            docs_url="https://openrouter.ai/keys",
            vision_models=(
                "openai/gpt-4o*",
                "openai/gpt-4.1*",
                "openai/gpt-5*",
                "anthropic/claude*",
                "google/gemini*",
                *OPEN_VISION_MODELS,
            ),
        ),
        Preset(
            "openai_compatible",
            "OpenAI-compatible server",
            "openai_compat",
            needs_key=False,
            local=True,
            embeddings=True,
            base_url_required=True,
            help="vLLM, LM Studio, llama.cpp, LocalAI or any server speaking the OpenAI API. "
            "Give its base URL (usually ending in /v1). Untick “local” if it is a paid service.",
            vision_models=OPEN_VISION_MODELS,
        ),
    ]
}

CHOICES = [(preset.key, preset.label) for preset in PRESETS.values()]


def get(key: str) -> Preset:
    try:
        return PRESETS[key]
    except KeyError:
        raise ValueError(f"Unknown provider preset {key!r}") from None
