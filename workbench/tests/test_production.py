"""The run command serves a production-safe configuration by default: DEBUG off, secrets from the
data directory, compressed and cached static files (collectstatic + WhiteNoise's manifest),
secure cookies exactly when the site is https, error pages with a CSP and no URL list or
traceback. Development mode is an explicit DEBUG=1."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.test import Client, override_settings
from django.urls import path

from tests import servers


def _env(tmp_path=None, **extra) -> dict[str, str]:
    """What `make run` sees: no DEBUG, no cookie or SSL overrides."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "DJANGO_SETTINGS_MODULE", "WORKBENCH_SITE_URL", "EMAIL_URL"}
        and not k.startswith(("SECURE_", "SESSION_", "CSRF_"))
    }
    env["DJANGO_SETTINGS_MODULE"] = "workbench.settings"
    if tmp_path is not None:
        env.update(
            WORKBENCH_DATA_DIR=str(tmp_path / "data"),
            DATABASE_URL=servers.test_database_url(),
            SECRET_KEY="s" * 60,
            FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        )
    env.update(extra)
    return env


def _settings_seen(env: dict[str, str]) -> dict:
    code = (
        "import json; from django.conf import settings as s; print(json.dumps({"
        "'debug': s.DEBUG, 'session_secure': s.SESSION_COOKIE_SECURE, "
        "'csrf_secure': s.CSRF_COOKIE_SECURE, 'ssl_redirect': s.SECURE_SSL_REDIRECT, "
        "'hsts': s.SECURE_HSTS_SECONDS, 'static': s.STORAGES['staticfiles']['BACKEND'], "
        "'secret': s.SECRET_KEY, 'mail': s.MAILERS['default']['BACKEND']}))"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_by_default_the_run_command_is_production_safe_on_plain_http(tmp_path):
    seen = _settings_seen(_env(tmp_path))

    assert seen["debug"] is False
    assert seen["static"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    # http://127.0.0.1:8000 must keep working: no Secure cookies, no https redirect, no HSTS.
    assert (seen["session_secure"], seen["csrf_secure"], seen["ssl_redirect"]) == (
        False,
        False,
        False,
    )
    assert seen["hsts"] == 0
    assert seen["mail"].endswith("console.EmailBackend")


def test_served_over_https_the_cookies_are_secure_and_https_is_enforced(tmp_path):
    seen = _settings_seen(_env(tmp_path, WORKBENCH_SITE_URL="https://wb.example.com"))

    assert (seen["session_secure"], seen["csrf_secure"], seen["ssl_redirect"]) == (True, True, True)
    assert seen["hsts"] == 31536000


def test_development_mode_is_an_explicit_opt_in(tmp_path):
    seen = _settings_seen(_env(tmp_path, DEBUG="1"))
    assert seen["debug"] is True


def test_with_the_embedded_database_secrets_come_from_the_data_directory_without_debug():
    """No SECRET_KEY in the environment, no DEBUG, no DATABASE_URL: the secret generated once
    into the data directory is used (here the test data directory's)."""
    env = {
        k: v
        for k, v in _env().items()
        if k not in {"SECRET_KEY", "FIELD_ENCRYPTION_KEY", "DATABASE_URL"}
    }
    env["WORKBENCH_DATA_DIR"] = str(settings.DATA_DIR)

    seen = _settings_seen(env)

    stored = json.loads((settings.DATA_DIR / "secrets.json").read_text())
    assert seen["debug"] is False
    assert seen["secret"] == stored["SECRET_KEY"]
    assert (settings.DATA_DIR / "secrets.json").stat().st_mode & 0o077 == 0


# --- Error pages ------------------------------------------------------------------------------------


def _boom(request):
    raise RuntimeError("secret detail: sk-live-1234")


urlpatterns = [path("boom/", _boom)]
handler500 = "workbench.views.server_error"


@override_settings(ROOT_URLCONF=__name__, DEBUG=False)
def test_a_server_error_shows_our_page_with_a_csp_and_no_traceback(db):
    response = Client(raise_request_exception=False).get("/boom/")

    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong on our side" in html
    assert "Traceback" not in html and "sk-live" not in html and "RuntimeError" not in html
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_make_run_on_a_fresh_data_directory_serves_plain_http_safely_and_stops_everything():
    """`make run`'s command on a fresh data directory, as its users run it: no DEBUG, no secrets,
    no DATABASE_URL. It generates the secrets, starts the embedded database, migrates, collects
    static files (hashed, compressed, cached for good), prints the admin password once and serves
    http://127.0.0.1:<port> where that admin can sign in (cookies are not Secure on plain http);
    a 404 lists no URLs and carries the CSP; SIGTERM stops it all."""
    import http.cookiejar
    import shutil
    import signal
    import time
    import uuid
    from urllib.parse import urlencode

    from workbench import embedded_db

    data_dir = settings.BASE_DIR / ".data" / f"serve-{uuid.uuid4().hex[:8]}"
    port = servers.free_port()
    env = {
        k: v
        for k, v in _env().items()
        if k not in {"SECRET_KEY", "FIELD_ENCRYPTION_KEY", "DATABASE_URL"}
    }
    env.update(WORKBENCH_DATA_DIR=str(data_dir), WORKBENCH_PORT=str(port))
    log = open(data_dir.parent / f"{data_dir.name}.log", "w+")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--no-worker"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # Generous: a fresh start migrates every app and compresses every static file, and the
        # machine may be busy; this measures nothing, it waits.
        deadline = time.monotonic() + 600
        while "Workbench is running" not in (data_dir.parent / f"{data_dir.name}.log").read_text():
            assert process.poll() is None, (data_dir.parent / f"{data_dir.name}.log").read_text()
            assert time.monotonic() < deadline, "serve did not start in 10 minutes"
            time.sleep(0.5)
        deadline = time.monotonic() + 180
        output = (data_dir.parent / f"{data_dir.name}.log").read_text()
        password = re.search(r"password: (\S+)", output)[1]
        base = f"http://127.0.0.1:{port}"
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        while True:
            try:
                page = opener.open(f"{base}/login/", timeout=10).read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline, "Daphne did not answer"
                time.sleep(0.5)
        css = re.search(r'href="(/static/workbench/app\.[0-9a-f]{12}\.css)"', page)
        assert css, "static URLs are not hashed (no manifest)"
        request = urllib.request.Request(base + css[1], headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=10) as static:
            assert "immutable" in static.headers["Cache-Control"]
            assert static.headers["Content-Encoding"] in {"gzip", "br"}
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{base}/no/such/page/", timeout=10)
        html = missing.value.read().decode()
        assert missing.value.code == 404 and "Page not found" in html
        assert "URLconf" not in html and "accounts/" not in html  # no list of URL patterns
        assert "script-src 'self'" in missing.value.headers["Content-Security-Policy"]
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
        signed_in = opener.open(
            urllib.request.Request(
                f"{base}/login/",
                data=urlencode(
                    {"csrfmiddlewaretoken": csrf, "username": "admin", "password": password}
                ).encode(),
                headers={"Referer": f"{base}/login/"},
            ),
            timeout=10,
        )
        assert signed_in.url == f"{base}/"
        assert all(not cookie.secure for cookie in jar)
        secrets_file = data_dir / "secrets.json"
        assert set(json.loads(secrets_file.read_text())) == {"SECRET_KEY", "FIELD_ENCRYPTION_KEY"}
        assert secrets_file.stat().st_mode & 0o077 == 0
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
            if embedded_db.is_running(data_dir):
                embedded_db.stop(data_dir)
            log.close()
            shutil.rmtree(data_dir, ignore_errors=True)
            (data_dir.parent / f"{data_dir.name}.log").unlink(missing_ok=True)
    assert not embedded_db.is_running(data_dir)
