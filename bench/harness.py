"""What every benchmark needs: Django on its own data directory, the fake provider server in
another process (pinned to the other core), a user and a credential, and percentile maths."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def django_setup() -> None:
    os.environ.setdefault("WORKBENCH_DATA_DIR", str(ROOT / ".data" / "bench"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)


def pin(core: int) -> None:
    """Keep the measured process on one core, the fake server on the other."""
    with contextlib.suppress(AttributeError, OSError):
        if os.cpu_count() and os.cpu_count() > 1:
            os.sched_setaffinity(0, {core})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def fake_server(core: int = 1):
    """The fake provider in its own process. Yields its base URL."""
    port = free_port()
    code = (
        f"import os, sys; sys.path.insert(0, {str(ROOT)!r});"
        f"os.sched_setaffinity(0, {{{core}}}) if hasattr(os, 'sched_setaffinity') and (os.cpu_count() or 1) > 1 else None;"
        f"from providers.fakeserver import run_forever; run_forever('127.0.0.1', {port})"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(5)


def configure(url: str, **knobs) -> None:
    request = urllib.request.Request(
        f"{url}/_fake/reset",
        data=json.dumps(knobs).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=5).read()


def bench_user_and_credential(url: str):
    from django.conf import settings

    from accounts.models import User
    from providers.models import ProviderCredential

    settings.WORKBENCH_EGRESS_ALLOW = [
        *settings.WORKBENCH_EGRESS_ALLOW,
        url.removeprefix("http://"),
    ]
    user, _ = User.objects.get_or_create(username="bench", defaults={"email": "bench@example.com"})
    credential, _ = ProviderCredential.objects.update_or_create(
        owner_user=user,
        name="bench openai",
        defaults={"preset": "openai", "api_key": "sk-bench-0123456789", "base_url": f"{url}/v1"},
    )
    return user, credential


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> str:
    return f"p50 {pct(values, 50):7.2f}  p99 {pct(values, 99):7.2f}  mean {statistics.fmean(values):7.2f}"


def machine() -> str:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{platform.node()} · {cpu} · {os.cpu_count()} cores · Python {platform.python_version()}"
    )
