"""Settings that come from the environment, and the development secrets.

Everything a deployment sets is an environment variable (documented in the README). Missing
secrets are generated once into the data directory (0600) when the embedded database makes this
machine the whole deployment (or with DEBUG on); with your own DATABASE_URL a missing secret stops
start-up with a message naming it.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name} must be one of 1/0, true/false, yes/no, on/off; got {raw!r}"
    )


def signup_mode(name: str, default: str = "open") -> str:
    """`open` (anyone signs up and logs in), `approve` (accounts wait for a superuser) or
    `closed` (no sign-up page). The old booleans still work: 1/true = open, 0/false = closed."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in {"open", "approve", "closed"}:
        return value
    if value in TRUE:
        return "open"
    if value in FALSE:
        return "closed"
    raise ImproperlyConfigured(f"{name} must be open, approve or closed; got {raw!r}")


def proxy_count(name: str) -> int:
    """How many reverse proxies in front of us append to X-Forwarded-For: `0` (not behind a
    proxy), a number, or a boolean (`1`/true = one proxy, as the setting used to be)."""
    raw = os.environ.get(name)
    if raw is None:
        return 0
    value = raw.strip().lower()
    if value in TRUE:
        return 1
    if value in FALSE:
        return 0
    if value.isascii() and value.isdigit() and int(value) <= 10:
        return int(value)
    raise ImproperlyConfigured(
        f"{name} must be the number of trusted reverse proxies in front of Workbench "
        f"(0 = none, 1, 2, …) or true/false; got {raw!r}"
    )


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def site_url(raw: str | None, *, allowed_hosts: list[str], port: int) -> str:
    """The address people use to reach the site, for links in emails (password reset,
    invitations, notices) and for deciding whether cookies must be Secure. Never taken from a
    request's Host header, which the client chooses. Unset: the first concrete host of
    ALLOWED_HOSTS on the run command's port, over http (what `make run` serves)."""
    if not raw:
        host = next((h for h in allowed_hosts if h not in {"*", ""} and not h.startswith(".")), "")
        return f"http://{host or '127.0.0.1'}:{port}"
    value = raw.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ImproperlyConfigured(
            f"WORKBENCH_SITE_URL must be an http:// or https:// address such as "
            f"https://workbench.example.com; got {raw!r}"
        )
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise ImproperlyConfigured(
            f"WORKBENCH_SITE_URL is the site's address only (scheme, host, optional port), "
            f"without a path, query or credentials; got {raw!r}"
        )
    return value


def _new_fernet_key() -> str:
    import base64

    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


DEV_SECRET_FACTORIES = {
    "SECRET_KEY": lambda: secrets.token_urlsafe(50),
    "FIELD_ENCRYPTION_KEY": _new_fernet_key,
}


def secret(name: str, *, generate: bool, data_dir: Path) -> str:
    """The secret from the environment; else, when `generate`, generated once into the data
    directory (0600) and read from there ever after."""
    value = os.environ.get(name)
    if value:
        return value
    if not generate:
        raise ImproperlyConfigured(
            f"{name} is not set. With your own DATABASE_URL (possibly shared by several "
            f"machines) every secret must come from the environment, the same on every machine "
            f"(see README, 'Configuration'). Generate one with: "
            f'python -c "import base64,secrets;print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())"'
        )
    path = data_dir / "secrets.json"
    data_dir.mkdir(parents=True, exist_ok=True)
    stored = json.loads(path.read_text()) if path.exists() else {}
    if name not in stored:
        stored[name] = DEV_SECRET_FACTORIES[name]()
        # Write-then-rename with 0600 from the start, so the secret is never world-readable.
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(stored, fh, indent=2)
        os.replace(tmp, path)
    return stored[name]


def field_encryption_keys(raw: str) -> list[str]:
    """FIELD_ENCRYPTION_KEY is one Fernet key or a comma-separated list, newest first: the first
    encrypts, all decrypt (rotation)."""
    keys = [key.strip() for key in raw.split(",") if key.strip()]
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY is empty.")
    return keys


def mailer_from_url(url: str | None) -> dict:
    """EMAIL_URL → a MAILERS entry. `smtp://user:pass@host:587?tls=1`, `smtps://…` (implicit TLS),
    `console://`, `locmem://`. Unset: the console backend — mail is printed where the server
    logs, so `make run` on a machine without a mail server still shows reset links to its
    operator instead of failing to send them."""
    if not url:
        return {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "console":
        return {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
    if scheme == "locmem":
        return {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    if scheme not in {"smtp", "smtps"}:
        raise ImproperlyConfigured(
            f"EMAIL_URL scheme must be smtp, smtps, console or locmem: {url!r}"
        )
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    options = {
        "host": parts.hostname or "localhost",
        "port": parts.port or (465 if scheme == "smtps" else 25),
        "use_ssl": scheme == "smtps",
        "use_tls": scheme == "smtp" and query.get("tls", "0").lower() in TRUE,
        "timeout": 10,
    }
    if parts.username:
        options["username"] = unquote(parts.username)
        options["password"] = unquote(parts.password or "")
    return {"BACKEND": "django.core.mail.backends.smtp.EmailBackend", "OPTIONS": options}
