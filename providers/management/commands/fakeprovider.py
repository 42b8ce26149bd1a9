"""`manage.py fakeprovider`: the fake provider server in the foreground, for demos and benchmarks."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from providers.fakeserver import FakeProvider, run_forever


class Command(BaseCommand):
    help = (
        "Run the fake LLM provider (OpenAI, Anthropic, Groq and Ollama wire formats) on loopback "
        "until Ctrl-C. Other processes can drive it via POST /_fake/configure|enqueue|reset."
    )
    requires_system_checks = []  # it touches no models, so it starts even when the DB is down

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=9100)
        parser.add_argument("--ttft", type=float, default=0.0, help="seconds to first token")
        parser.add_argument("--tps", type=float, default=None, help="tokens per second")
        parser.add_argument("--tokens-per-chunk", type=int, default=1)
        parser.add_argument("--reply", default=None, help="exact reply text")
        parser.add_argument("--reply-tokens", type=int, default=None, help="reply of n words")

    def handle(self, *args: Any, **options: Any) -> None:
        knobs = {
            "ttft": options["ttft"],
            "tokens_per_second": options["tps"],
            "tokens_per_chunk": options["tokens_per_chunk"],
            "reply": options["reply"],
            "reply_tokens": options["reply_tokens"],
        }
        run_forever(options["host"], options["port"], on_ready=self._announce, **knobs)
        self.stdout.write("Fake provider stopped.")

    def _announce(self, provider: FakeProvider) -> None:
        url = provider.url
        self.stdout.write(
            self.style.SUCCESS(f"Fake provider listening on {url}")
            + "\nBase URLs per preset:\n"
            + f"  OpenAI-compatible  {url}/v1\n"
            + f"  Anthropic          {url}\n"
            + f"  Groq               {url}   (the SDK appends /openai/v1)\n"
            + f"  Ollama             {url}\n"
            + f"Control: POST {url}/_fake/configure | /_fake/enqueue | /_fake/reset, "
            + f"GET {url}/_fake/requests\n"
            + "Quit with CONTROL-C."
        )
        self.stdout.flush()
