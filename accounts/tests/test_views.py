"""Behaviour of the HTML views: sign-up, teams and members, the team switcher, tokens, password
reset, the area pages, error pages and the CSP. Status codes per persona for every route are in
tests/test_access_matrix.py; these tests follow people through pages and look at what they see."""

from __future__ import annotations

import json
import re

import pytest
from django.core import mail
from django.test import Client, override_settings

from accounts import services
from accounts.middleware import SESSION_KEY
from accounts.models import ApiToken, Invitation, Membership, Role, Team, User
from conftest import PASSWORD

NEW_PASSWORD = "a-Long-unusual-passphrase-91"


def current_team_shown(response) -> str:
    """What the team switcher in the layout says we are working in."""
    match = re.search(r'data-testid="current-team">([^<]*)<', response.content.decode())
    assert match, "the page has no team switcher"
    return match.group(1)


def switch(client: Client, team_pk: int, next_url: str = "/"):
    return client.post(f"/teams/{team_pk}/switch/", {"next": next_url})


# --- Acceptance: a viewer sees a team but cannot change it -------------------------------------


def sign_up(client: Client, username: str, email: str, password: str = NEW_PASSWORD):
    return client.post(
        "/signup/",
        {"username": username, "email": email, "password1": password, "password2": password},
    )


def link_in(message) -> str:
    return re.search(r"http://127\.0\.0\.1:8000(/signup/confirm/\S+/)", message.body)[1]


def test_a_new_user_signs_up_creates_a_team_and_invites_a_viewer_who_cannot_change_it(
    alice, client_for, django_capture_on_commit_callbacks
):
    sam = Client()
    with django_capture_on_commit_callbacks(execute=True):
        signed_up = sign_up(sam, "sam", "sam@example.com")
    assert signed_up["Location"] == "/signup/sent/"
    assert "sam@example.com" in sam.get("/signup/sent/").content.decode()
    assert not User.objects.filter(username="sam").exists()  # not before the link is used
    [message] = mail.outbox
    assert message.to == ["sam@example.com"]
    link = link_in(message)
    assert "Create the account <strong>sam</strong>" in sam.get(link).content.decode()
    assert not User.objects.filter(username="sam").exists()  # opening the link creates nothing
    confirmed = sam.post(link)
    assert confirmed["Location"] == "/"
    assert "Welcome, sam" in sam.get("/").content.decode()  # signed in
    assert "Link expired" in Client().get(link).content.decode()  # the link works once

    created = sam.post("/settings/teams/", {"name": "Sam Lab"})
    lab = Team.objects.get(name="Sam Lab")
    assert created["Location"] == f"/settings/teams/{lab.pk}/"
    assert current_team_shown(sam.get(created["Location"])) == "Sam Lab"

    invited = sam.post(
        f"/settings/teams/{lab.pk}/invitations/", {"user": "alice", "role": "viewer"}
    )
    assert invited.status_code == 302
    assert not lab.memberships.filter(user=alice).exists()  # not until she says yes

    viewer = client_for(alice)
    assert 'data-testid="invitations-badge"' in viewer.get("/").content.decode()
    invitation = Invitation.objects.get(team=lab)
    joined = viewer.post(f"/settings/invitations/{invitation.pk}/accept/")
    assert joined["Location"] == f"/settings/teams/{lab.pk}/"
    assert lab.memberships.get(user=alice).role == Role.VIEWER
    page = viewer.get(f"/settings/teams/{lab.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert '<h2 data-testid="team-name">Sam Lab</h2>' in html
    assert "you can see this team but not change it" in html
    assert "Invite someone" not in html
    assert 'id="invite-member"' not in html
    assert "sam@example.com" not in html  # members' emails are for the team's managers
    assert f"/settings/teams/{lab.pk}/rename/" not in html
    assert f"/settings/teams/{lab.pk}/delete/" not in html
    assert "/role/" not in html  # no role pickers

    renamed = viewer.post(f"/settings/teams/{lab.pk}/rename/", {"name": "Alice's now"})
    assert renamed.status_code == 403
    assert "Not allowed" in renamed.content.decode()
    inviting = viewer.post(
        f"/settings/teams/{lab.pk}/invitations/", {"user": "alice", "role": "owner"}
    )
    assert inviting.status_code == 403

    lab.refresh_from_db()
    assert lab.name == "Sam Lab"
    assert set(lab.memberships.values_list("user__username", "role")) == {
        ("sam", Role.OWNER),
        ("alice", Role.VIEWER),
    }


def test_sign_up_answers_the_same_whether_the_email_or_username_is_taken(
    alice, django_capture_on_commit_callbacks
):
    """It used to say "An account with this email already exists": a way to find out who uses
    this instance. Now every valid form gets the same page; the email says what happened."""
    pages = []
    with django_capture_on_commit_callbacks(execute=True):
        for username, email in [
            ("newbie", "newbie@example.com"),  # free
            ("alice2", "ALICE@example.com"),  # alice's address
            ("Alice", "someone@example.com"),  # alice's name in another case
            ("аlice", "else@example.com"),  # refused on the page: mixed scripts reveal nothing
        ]:
            response = sign_up(Client(), username, email)
            pages.append((response.status_code, response.get("Location")))

    assert pages[:3] == [(302, "/signup/sent/")] * 3
    assert pages[3][0] == 200
    assert {m.to[0]: m.subject for m in mail.outbox} == {
        "newbie@example.com": "Confirm your Workbench account",
        "alice@example.com": "You already have a Workbench account",
        "someone@example.com": "Choose another Workbench username",
    }
    assert not User.objects.filter(username__in=["alice2", "newbie"]).exists()


def test_a_username_taken_between_sign_up_and_confirmation_is_explained(
    db, django_capture_on_commit_callbacks
):
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        sign_up(client, "sam", "sam@example.com")
    User.objects.create_user(username="SAM", email="other@example.com", password=PASSWORD)

    response = client.post(link_in(mail.outbox[0]))

    assert response.status_code == 400
    assert "Someone took this username or email address" in response.content.decode()
    assert User.objects.filter(username_key="sam").count() == 1


def test_signing_up_with_a_weak_password_is_refused(db):
    response = Client().post(
        "/signup/",
        {"username": "sam", "email": "sam@example.com", "password1": "123", "password2": "123"},
    )

    assert response.status_code == 200
    assert "too short" in response.content.decode()
    assert not User.objects.filter(username="sam").exists()
    assert mail.outbox == []


@override_settings(WORKBENCH_SIGNUP="closed")
def test_sign_up_is_not_found_when_disabled(db):
    client = Client()
    data = {
        "username": "sam",
        "email": "sam@example.com",
        "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD,
    }

    assert client.get("/signup/").status_code == 404
    assert client.post("/signup/", data).status_code == 404
    assert client.get("/signup/sent/").status_code == 404
    assert client.post("/signup/confirm/anything/").status_code == 404
    assert not User.objects.filter(username="sam").exists()
    assert mail.outbox == []
    assert "/signup/" not in client.get("/login/").content.decode()


def test_sign_ups_from_one_network_are_capped(db):
    client = Client(REMOTE_ADDR="203.0.113.90")
    for n in range(5):
        assert sign_up(client, f"user{n}", f"user{n}@example.com").status_code == 302

    response = sign_up(client, "user9", "user9@example.com")

    assert response.status_code == 429
    assert "Too many sign-ups from your network." in response.content.decode()


def test_the_login_page_links_to_sign_up_when_it_is_open(db):
    assert 'href="/signup/"' in Client().get("/login/").content.decode()


def test_inviting_someone_unknown_reads_exactly_like_inviting_someone_known(
    team, alice, charlie_outsider, client_for
):
    client = client_for(alice)

    def confirmation(identifier: str) -> str:
        page = client.post(
            f"/settings/teams/{team.pk}/invitations/",
            {"user": identifier, "role": "member"},
            follow=True,
        )
        [message] = [str(m) for m in page.context["messages"]]
        return message.replace(identifier, "<who>")

    assert confirmation("charlie_outsider") == confirmation("ghost")
    assert confirmation("charlie_outsider@example.com") == confirmation("ghost@example.com")
    html = client.get(f"/settings/teams/{team.pk}/").content.decode()
    pending = html.split('data-testid="pending-invitations"')[1].split("</table>")[0]
    for identifier in ("charlie_outsider", "ghost", "charlie_outsider@example.com"):
        assert f"<td>{identifier}</td>" in pending
    assert team.memberships.count() == 1


def test_a_bad_invitation_shows_the_error_on_the_form(team, alice, bob_teammate, client_for):
    response = client_for(alice).post(
        f"/settings/teams/{team.pk}/invitations/", {"user": "bob_teammate", "role": "member"}
    )

    assert response.status_code == 400
    assert "“bob_teammate” is already a member of Acme." in response.content.decode()


def test_the_invitee_sees_waiting_invitations_and_can_decline_one(
    team, alice, charlie_outsider, client_for
):
    invitation = services.invitation_create(
        actor=alice, team=team, identifier="charlie_outsider", role="viewer"
    )
    client = client_for(charlie_outsider)

    page = client.get("/settings/invitations/").content.decode()
    assert "Acme" in page and "Invited by alice" in page
    assert '<span class="count">1</span>' in client.get("/").content.decode()

    declined = client.post(f"/settings/invitations/{invitation.pk}/decline/", follow=True)

    assert "You declined the invitation to “Acme”." in declined.content.decode()
    assert 'data-testid="no-invitations"' in declined.content.decode()
    assert 'data-testid="invitations-badge"' not in client.get("/").content.decode()
    assert not team.memberships.filter(user=charlie_outsider).exists()


def test_a_manager_withdraws_an_invitation_from_the_team_page(
    team, alice, charlie_outsider, client_for
):
    invitation = services.invitation_create(
        actor=alice, team=team, identifier="charlie_outsider", role="viewer"
    )

    page = client_for(alice).post(
        f"/settings/teams/{team.pk}/invitations/{invitation.pk}/withdraw/", follow=True
    )

    assert "Invitation to “charlie_outsider” withdrawn." in page.content.decode()
    assert 'data-testid="no-invitations"' in page.content.decode()
    answered = client_for(charlie_outsider).post(
        f"/settings/invitations/{invitation.pk}/accept/", follow=True
    )
    assert "no longer open" in answered.content.decode()
    assert not team.memberships.filter(user=charlie_outsider).exists()


def test_the_last_owner_trying_to_leave_is_told_why_and_stays(team, alice, client_for):
    client = client_for(alice)
    own = team.memberships.get(user=alice)

    response = client.post(f"/settings/teams/{team.pk}/members/{own.pk}/remove/", follow=True)

    assert "The last owner cannot leave" in response.content.decode()
    assert Membership.objects.filter(pk=own.pk).exists()


def test_a_member_who_leaves_loses_the_team_from_their_session(team, bob_teammate, client_for):
    client = client_for(bob_teammate)
    switch(client, team.pk)
    own = team.memberships.get(user=bob_teammate)

    response = client.post(f"/settings/teams/{team.pk}/members/{own.pk}/remove/")

    assert response["Location"] == "/settings/teams/"
    assert SESSION_KEY not in client.session
    assert client.get(f"/settings/teams/{team.pk}/").status_code == 404


# --- The team switcher --------------------------------------------------------------------------


def test_switching_team_shows_it_as_the_current_team_in_the_layout(team, alice, client_for):
    client = client_for(alice)
    assert current_team_shown(client.get("/")) == "Personal"

    response = switch(client, team.pk, next_url="/chat/")

    assert response.status_code == 302
    assert response["Location"] == "/chat/"
    assert client.session[SESSION_KEY] == team.pk
    assert current_team_shown(client.get("/chat/")) == "Acme"
    assert current_team_shown(client.get("/settings/profile/")) == "Acme"

    client.post("/teams/personal/switch/", {"next": "/"})
    assert current_team_shown(client.get("/")) == "Personal"


def test_a_viewer_can_switch_to_the_team_too(team, vera_viewer, client_for):
    client = client_for(vera_viewer)
    switch(client, team.pk)
    assert current_team_shown(client.get("/")) == "Acme"


def test_switching_to_a_foreign_team_is_not_found_and_keeps_the_current_team(
    team, alice, client_for
):
    outside = Team.objects.create(name="Outside")
    client = client_for(alice)
    switch(client, team.pk)

    response = switch(client, outside.pk)

    assert response.status_code == 404
    assert client.session[SESSION_KEY] == team.pk
    assert current_team_shown(client.get("/")) == "Acme"


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example",
        "https://evil.example/login/",
        "//evil.example/",
        "http://testserver.evil.example/",
    ],
)
def test_switching_never_redirects_off_site(team, alice, client_for, next_url):
    response = switch(client_for(alice), team.pk, next_url=next_url)

    assert response.status_code == 302
    assert response["Location"] == "/"


@pytest.mark.parametrize("url", ["/teams/personal/switch/", "/teams/{team}/switch/"])
def test_switching_without_a_next_goes_home(team, alice, client_for, url):
    response = client_for(alice).post(url.format(team=team.pk))
    assert response["Location"] == "/"


def test_a_removed_member_drops_back_to_personal(team, alice, bob_teammate, client_for):
    client = client_for(bob_teammate)
    switch(client, team.pk)
    assert current_team_shown(client.get("/")) == "Acme"

    services.membership_remove(actor=alice, membership=team.memberships.get(user=bob_teammate))

    page = client.get("/")
    assert current_team_shown(page) == "Personal"
    assert "Acme" not in page.content.decode()  # nor in the switcher's list
    assert SESSION_KEY not in client.session


def test_a_deleted_team_drops_everyone_back_to_personal(team, alice, bob_teammate, client_for):
    client = client_for(bob_teammate)
    switch(client, team.pk)

    services.team_delete(actor=alice, team=team)

    assert current_team_shown(client.get("/")) == "Personal"


# --- API tokens page ----------------------------------------------------------------------------


def test_the_token_page_shows_the_plaintext_once_then_only_the_prefix(alice, client_for):
    client = client_for(alice)

    created = client.post(
        "/settings/tokens/", {"name": "CI script", "scope": "write", "expires_at": ""}, follow=True
    )

    assert created.status_code == 200
    assert created.redirect_chain == [("/settings/tokens/", 302)]  # a reload can't create another
    html = created.content.decode()
    match = re.search(r'<code id="new-token-value">(wb_[^<]+)</code>', html)
    assert match, "the new token is not shown"
    raw = match.group(1)
    token = ApiToken.objects.get(user=alice)
    assert services.token_authenticate(raw=raw) == token
    assert token.scope == "write"
    # Once shown, the plaintext is nowhere: not in the session...
    assert raw not in json.dumps(dict(client.session.items()), default=str)

    # ...nor on the page any more; only the prefix is.
    later = client.get("/settings/tokens/").content.decode()
    assert raw not in later
    assert 'data-testid="new-token"' not in later
    assert f"<code>{token.prefix}…</code>" in later
    assert ApiToken.objects.filter(user=alice).count() == 1


def test_a_token_with_a_past_expiry_is_refused_on_the_page(alice, client_for):
    response = client_for(alice).post(
        "/settings/tokens/", {"name": "old", "scope": "read", "expires_at": "2000-01-01T00:00"}
    )

    assert response.status_code == 400
    assert "The expiry must be in the future." in response.content.decode()
    assert not ApiToken.objects.exists()


def test_revoking_a_token_on_the_page_marks_it_revoked(alice, client_for):
    token, raw = services.token_create(user=alice, name="CI")
    client = client_for(alice)

    page = client.post(f"/settings/tokens/{token.pk}/revoke/", follow=True).content.decode()

    assert "revoked" in page
    assert services.token_authenticate(raw=raw) is None


# --- Password reset -----------------------------------------------------------------------------


def test_password_reset_emails_a_link_that_sets_a_new_password(alice):
    client = Client()

    response = client.post("/password/reset/", {"email": "ALICE@example.com"})

    assert response["Location"] == "/password/reset/sent/"
    assert len(mail.outbox) == 1
    [message] = mail.outbox
    assert message.to == ["alice@example.com"]
    match = re.search(r"http://127\.0\.0\.1:8000(/password/reset/[^/\s]+/[^/\s]+/)", message.body)
    assert match, message.body

    landing = client.get(match.group(1))
    assert landing.status_code == 302  # to the set-password form, token moved into the session
    form_url = landing["Location"]
    done = client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done["Location"] == "/password/reset/complete/"

    assert Client().login(username="alice", password=NEW_PASSWORD)
    assert not Client().login(username="alice", password=PASSWORD)
    # The link works once.
    assert "set-password" not in client.get(match.group(1)).get("Location", "")


@pytest.mark.parametrize("host", ["127.0.0.1:6666", "evil.example"])
def test_the_reset_link_comes_from_the_site_url_whatever_host_the_request_names(
    alice, settings, host
):
    """The link used any port sent in Host: a poisoned request would mail the victim a link to
    the attacker's server, carrying a valid reset token."""
    settings.ALLOWED_HOSTS = ["127.0.0.1", "evil.example", "testserver"]
    settings.WORKBENCH_SITE_URL = "https://wb.example.com"

    Client().post("/password/reset/", {"email": "alice@example.com"}, headers={"Host": host})

    [message] = mail.outbox
    assert "https://wb.example.com/password/reset/" in message.body
    assert host not in message.body


def test_password_reset_for_an_unknown_email_sends_nothing_and_says_the_same(db):
    response = Client().post("/password/reset/", {"email": "nobody@example.com"})

    assert response["Location"] == "/password/reset/sent/"
    assert mail.outbox == []


# --- Areas, error pages, CSP --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "label"),
    # Areas whose feature has not landed yet (Chat has its own page: chats/tests/test_views.py).
    [
        ("/playground/", "Playground"),
        ("/prompts/", "Prompts"),
        ("/collections/", "Collections"),
        ("/evaluations/", "Evaluations"),
        ("/usage/", "Usage"),
    ],
)
def test_every_area_shows_a_friendly_empty_state(url, label, alice, client_for):
    response = client_for(alice).get(url)

    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="empty-state"' in html
    assert f"<h1>{label}</h1>" in html
    assert f'href="{url}" aria-current="page"' in html


def test_an_area_asks_anonymous_visitors_to_log_in(db):
    response = Client().get("/chat/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/chat/"


@pytest.mark.parametrize("logged_in", [True, False])
def test_an_unknown_url_renders_our_404_page(logged_in, alice, client_for):
    response = client_for(alice if logged_in else None).get("/no/such/page/")

    assert response.status_code == 404
    assert "404.html" in [t.name for t in response.templates]
    html = response.content.decode()
    assert "Page not found" in html
    assert ('data-testid="current-team"' in html) is logged_in


@pytest.mark.parametrize(
    "url", ["/", "/login/", "/settings/teams/", "/api/docs/", "/no/such/page/"]
)
def test_responses_carry_a_csp_without_inline_script(url, alice, client_for):
    response = client_for(alice).get(url)

    policy = response["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
    assert directives["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in directives["script-src"]
    assert "'unsafe-eval'" not in directives["script-src"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]


def test_pages_contain_no_inline_script(alice, client_for):
    html = client_for(alice).get("/").content.decode()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts
    assert all("src=" in tag for tag in scripts), scripts


def test_only_the_api_docs_allow_inline_styles(alice, client_for):
    client = client_for(alice)
    assert "'unsafe-inline'" not in client.get("/")["Content-Security-Policy"]
    docs_policy = client.get("/api/docs/")["Content-Security-Policy"]
    assert "style-src 'self' 'unsafe-inline'" in docs_policy


# --- Profile ------------------------------------------------------------------------------------


def test_the_profile_page_saves_names(alice, client_for):
    response = client_for(alice).post(
        "/settings/profile/", {"first_name": "Alice", "last_name": "Liddell"}
    )

    assert response["Location"] == "/settings/profile/"
    alice.refresh_from_db()
    assert (alice.display_name, alice.email) == ("Alice Liddell", "alice@example.com")


def test_a_profile_post_without_an_email_keeps_the_email(alice, client_for):
    """A form post without the email field used to save an empty address."""
    response = client_for(alice).post("/settings/profile/", {"first_name": "Al"})

    assert response.status_code == 302
    alice.refresh_from_db()
    assert (alice.first_name, alice.email) == ("Al", "alice@example.com")


def test_the_profile_page_changes_the_email_with_the_current_password_and_tells_the_old_one(
    alice, client_for, django_capture_on_commit_callbacks
):
    client = client_for(alice)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/settings/profile/email/",
            {"email": "a@example.com", "current_password": PASSWORD},
            follow=True,
        )

    assert response.redirect_chain == [("/settings/profile/", 302)]
    assert "Email changed to a@example.com. We told alice@example.com too." in (
        response.content.decode()
    )
    alice.refresh_from_db()
    assert alice.email == "a@example.com"
    [notice] = mail.outbox
    assert notice.to == ["alice@example.com"]
    assert "a@example.com" in notice.body


def test_a_wrong_current_password_changes_no_email(alice, client_for):
    response = client_for(alice).post(
        "/settings/profile/email/", {"email": "a@example.com", "current_password": "guess"}
    )

    assert response.status_code == 400
    assert response.context["email_form"].errors == {
        "current_password": ["Your current password is not correct."]
    }
    alice.refresh_from_db()
    assert alice.email == "alice@example.com"
    assert mail.outbox == []


def test_taking_someone_elses_email_on_the_profile_page_is_a_clear_field_error(
    alice, charlie_outsider, client_for
):
    response = client_for(alice).post(
        "/settings/profile/email/",
        {"email": "CHARLIE_OUTSIDER@example.com", "current_password": PASSWORD},
    )

    assert response.status_code == 400
    assert response.context["email_form"].errors == {
        "email": ["An account with this email already exists."]
    }
    alice.refresh_from_db()
    assert alice.email == "alice@example.com"
