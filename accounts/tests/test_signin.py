"""Brute force: sign-in attempts are throttled per account+address and per address, with a clear
message; password-reset requests per address and per email (accounts.signin). The review got 30
wrong passwords in 16 s and then the right one worked."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.core import mail
from django.db import connections
from django.test import Client
from django.utils import timezone

from accounts import signin
from accounts.models import ThrottleWindow, User
from conftest import PASSWORD, make_user

PAIR = signin.ACCOUNT_AND_ADDRESS.limit
LOCKED = "Too many failed sign-in attempts for this account from your network."


def log_in(client: Client, username: str, password: str, **headers):
    return client.post("/login/", {"username": username, "password": password}, headers=headers)


def signed_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == "/"


def test_after_five_wrong_passwords_even_the_right_one_waits_with_a_clear_message(alice):
    attacker = Client(REMOTE_ADDR="203.0.113.20")
    for n in range(PAIR):
        response = log_in(attacker, "alice", f"guess-{n}")
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()

    response = log_in(attacker, "alice", PASSWORD)

    assert response.status_code == 429
    html = response.content.decode()
    assert LOCKED in html
    assert "Try again in 15 minutes, or reset your password." in html
    assert "_auth_user_id" not in attacker.session


def test_a_locked_pair_does_not_lock_the_owner_out_from_elsewhere(alice):
    """Knowing a username must not be enough to keep its owner out."""
    attacker = Client(REMOTE_ADDR="203.0.113.21")
    for n in range(PAIR + 10):
        log_in(attacker, "alice", f"guess-{n}")

    assert signed_in(log_in(Client(REMOTE_ADDR="198.51.100.21"), "alice", PASSWORD))


def test_the_case_of_the_username_does_not_make_a_new_account_to_guess(alice):
    attacker = Client(REMOTE_ADDR="203.0.113.22")
    for n, name in enumerate(["alice", "ALICE", "Alice", "ａｌｉｃｅ", "alicE"]):
        log_in(attacker, name, f"guess-{n}")

    assert log_in(attacker, "aLiCe", PASSWORD).status_code == 429


def test_one_address_spraying_many_accounts_is_stopped(db):
    users = [make_user(f"user{n}") for n in range(8)]
    sprayer = Client(REMOTE_ADDR="203.0.113.23")
    for n in range(signin.ADDRESS.limit):
        assert log_in(sprayer, users[n % 8].username, f"guess-{n}").status_code == 200

    response = log_in(sprayer, users[0].username, PASSWORD)

    assert response.status_code == 429
    assert "Too many failed sign-in attempts from your network." in response.content.decode()
    assert signed_in(log_in(Client(REMOTE_ADDR="198.51.100.23"), "user0", PASSWORD))


def test_a_successful_sign_in_clears_its_own_failures(alice):
    client = Client(REMOTE_ADDR="203.0.113.24")
    for _ in range(2):
        for n in range(PAIR - 1):
            log_in(client, "alice", f"typo-{n}")
        assert signed_in(log_in(client, "alice", PASSWORD))
        client.post("/logout/")


def test_successful_sign_ins_from_a_busy_office_do_not_use_up_its_address(db):
    office = "203.0.113.25"
    for n in range(signin.ADDRESS.limit + 5):
        make_user(f"colleague{n}")
        assert signed_in(log_in(Client(REMOTE_ADDR=office), f"colleague{n}", PASSWORD)), n


def test_an_unknown_username_is_throttled_exactly_like_a_real_one(alice):
    client = Client(REMOTE_ADDR="203.0.113.26")
    for n in range(PAIR):
        log_in(client, "ghost", f"guess-{n}")
        log_in(client, "alice", f"guess-{n}")

    ghost, real = log_in(client, "ghost", "x"), log_in(client, "alice", "x")
    assert (ghost.status_code, real.status_code) == (429, 429)
    assert LOCKED in ghost.content.decode() and LOCKED in real.content.decode()


def test_rotating_x_forwarded_for_does_not_escape_the_sign_in_throttle(alice):
    client = Client(REMOTE_ADDR="203.0.113.27")
    for n in range(PAIR):
        log_in(client, "alice", f"guess-{n}", **{"X-Forwarded-For": f"10.1.1.{n}"})

    assert log_in(client, "alice", PASSWORD, **{"X-Forwarded-For": "10.2.2.2"}).status_code == 429


def test_the_lock_ends_when_its_window_does(alice):
    client = Client(REMOTE_ADDR="203.0.113.28")
    for n in range(PAIR):
        log_in(client, "alice", f"guess-{n}")
    assert log_in(client, "alice", PASSWORD).status_code == 429

    ThrottleWindow.objects.update(window_ends=timezone.now() - timedelta(seconds=1))

    assert signed_in(log_in(client, "alice", PASSWORD))


def test_parallel_guesses_are_all_counted_before_any_password_is_checked(alice, transactional_db):
    def guess(n):
        try:
            return log_in(Client(REMOTE_ADDR="203.0.113.29"), "alice", f"parallel-{n}").status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(guess, range(4 * PAIR)))

    assert statuses.count(200) == PAIR  # checked, wrong
    assert statuses.count(429) == 3 * PAIR  # never checked


def test_the_admin_login_is_throttled_too(db):
    User.objects.create_superuser("root", "root@example.com", PASSWORD)
    client = Client(REMOTE_ADDR="203.0.113.30")
    for n in range(PAIR):
        client.post("/admin/login/", {"username": "root", "password": f"guess-{n}"})

    response = client.post("/admin/login/", {"username": "root", "password": PASSWORD})

    assert LOCKED in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_guessing_the_old_password_on_the_change_form_is_throttled(alice):
    """A stolen session must not be a way to find the password."""
    client = Client(REMOTE_ADDR="203.0.113.31")
    client.force_login(alice)
    new = "a-Long-unusual-passphrase-91"
    for n in range(PAIR):
        response = client.post(
            "/password/change/",
            {"old_password": f"guess-{n}", "new_password1": new, "new_password2": new},
        )
        assert response.status_code == 200

    response = client.post(
        "/password/change/", {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
    )

    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_guessing_the_current_password_to_change_the_email_is_throttled(alice):
    client = Client(REMOTE_ADDR="203.0.113.32")
    client.force_login(alice)
    for n in range(PAIR):
        wrong = client.patch(
            "/api/me/",
            {"email": "x@evil.example", "current_password": f"guess-{n}"},
            content_type="application/json",
        )
        assert wrong.status_code == 400

    api = client.patch(
        "/api/me/",
        {"email": "x@evil.example", "current_password": PASSWORD},
        content_type="application/json",
    )
    page = client.post(
        "/settings/profile/email/", {"email": "x@evil.example", "current_password": PASSWORD}
    )

    assert api.status_code == 429
    assert LOCKED in api.json()["error"]["message"]
    assert page.status_code == 429
    alice.refresh_from_db()
    assert alice.email == "alice@example.com"


# --- Password reset requests ----------------------------------------------------------------------


def reset(client: Client, email: str):
    return client.post("/password/reset/", {"email": email})


def test_reset_requests_for_one_email_are_capped_so_nobody_floods_a_mailbox(alice):
    for n in range(signin.RESET_EMAIL.limit):
        assert (
            reset(Client(REMOTE_ADDR=f"203.0.113.{40 + n}"), "alice@example.com").status_code == 302
        )

    response = reset(Client(REMOTE_ADDR="203.0.113.50"), "ALICE@example.com")

    assert response.status_code == 429
    assert "We already sent several reset emails to this address" in response.content.decode()
    assert len(mail.outbox) == signin.RESET_EMAIL.limit


def test_reset_requests_from_one_address_are_capped(alice):
    client = Client(REMOTE_ADDR="203.0.113.51")
    for n in range(signin.RESET_ADDRESS.limit):
        assert reset(client, f"someone{n}@example.com").status_code == 302

    response = reset(client, "alice@example.com")

    assert response.status_code == 429
    assert "Too many password-reset requests from your network." in response.content.decode()
    assert mail.outbox == []


def test_the_reset_cap_answers_the_same_for_unknown_addresses(db):
    client_codes = [
        reset(Client(REMOTE_ADDR=f"203.0.113.{60 + n}"), "nobody@example.com").status_code
        for n in range(signin.RESET_EMAIL.limit + 1)
    ]
    assert client_codes == [302] * signin.RESET_EMAIL.limit + [429]
