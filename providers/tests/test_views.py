"""Behaviour of Settings → Providers: the list (with the automatic Echo credential), adding with an
automatic connection test, editing, toggling, deleting, the detail page with its catalogue, the
htmx connection test, and what a viewer sees. Status codes per persona for every route are in
tests/test_access_matrix.py; these tests follow people through the pages."""

from __future__ import annotations

import re

import pytest

from accounts.middleware import SESSION_KEY
from billing.models import UsageRecord
from providers import services
from providers.models import ProviderCredential, ProviderModel

KEY = "sk-test-key-0123456789"


def html(response) -> str:
    return response.content.decode()


def messages_shown(response) -> list[tuple[str, str]]:
    """(level, text) of the flash messages in the layout."""
    block = re.search(r'<ul class="messages"[^>]*>(.*?)</ul>', html(response), re.S)
    if not block:
        return []
    return re.findall(r'<li class="([^"]*)">(.*?)</li>', block.group(1), re.S)


def owner_options(response) -> list[str]:
    select = re.search(r'<select name="owner_team"[^>]*>(.*?)</select>', html(response), re.S)
    assert select, "the form has no owner field"
    return re.findall(r'<option value="([^"]*)"', select.group(1))


def in_team(client, team):
    session = client.session
    session[SESSION_KEY] = team.pk
    session.save()
    return client


def add_form(**fields) -> dict:
    return {
        "preset": "openai",
        "name": "Work",
        "api_key": KEY,
        "base_url": "",
        "organization": "",
        "owner_team": "",
        **fields,
    }


# --- The list -------------------------------------------------------------------------------------


def test_the_list_creates_the_personal_echo_credential_once(alice, client_for):
    client = client_for(alice)

    page = client.get("/settings/providers/")
    client.get("/settings/providers/")

    assert page.status_code == 200
    echo = ProviderCredential.objects.get(owner_user=alice, preset="echo")
    assert ProviderCredential.objects.filter(preset="echo").count() == 1
    row = re.search(rf'<tr id="credential-{echo.pk}">(.*?)</tr>', html(page), re.S).group(1)
    assert "Echo (local)" in row
    assert '<span class="badge ok">local</span>' in row
    assert "not needed" in row
    assert "Personal" in row


def test_the_list_shows_masked_keys_owners_and_the_current_teams_credentials(
    alice, team, client_for, make_credential
):
    mine = make_credential(alice, "openai", name="Work")
    acme = make_credential(team, "ollama", name="Acme GPU", api_key="")
    client = client_for(alice)

    personal = html(client.get("/settings/providers/"))
    assert "Work" in personal
    assert "sk-…6789" in personal
    assert "Acme GPU" not in personal  # not the current team
    assert KEY not in personal

    page = html(in_team(client, team).get("/settings/providers/"))
    mine_row = re.search(rf'<tr id="credential-{mine.pk}">(.*?)</tr>', page, re.S).group(1)
    acme_row = re.search(rf'<tr id="credential-{acme.pk}">(.*?)</tr>', page, re.S).group(1)
    assert "<code>sk-…6789</code>" in mine_row
    assert "Personal" in mine_row
    assert '<span class="badge ok">local</span>' not in mine_row
    assert '<span class="badge">Acme</span>' in acme_row
    assert '<span class="badge ok">local</span>' in acme_row
    assert "untested" in acme_row
    assert KEY not in page


# --- Adding ---------------------------------------------------------------------------------------


def test_adding_a_credential_tests_it_and_shows_success_on_its_page(
    alice, client_for, fake_provider
):
    client = client_for(alice)

    response = client.post("/settings/providers/add/", add_form(base_url=f"{fake_provider.url}/v1"))

    credential = ProviderCredential.objects.get(name="Work")
    assert response.status_code == 302
    assert response["Location"] == f"/settings/providers/{credential.pk}/"
    assert credential.owner_user == alice
    assert credential.last_test_ok is True
    detail = client.get(response["Location"])
    [(level, text)] = messages_shown(detail)
    assert level == "success"
    assert text.startswith("Saved “Work”. Connected in ")
    assert "3 models available." in text
    assert '<span class="badge active">connected</span>' in html(detail)
    assert "<code>gpt-4o-mini</code>" in html(detail)
    assert KEY not in html(detail)


def test_adding_a_credential_that_fails_its_test_is_saved_with_a_warning(
    alice, client_for, fake_provider
):
    fake_provider.configure(echo_auth=True)
    client = client_for(alice)

    response = client.post(
        "/settings/providers/add/", add_form(base_url=f"{fake_provider.url}/v1"), follow=True
    )

    credential = ProviderCredential.objects.get(name="Work")
    assert credential.last_test_ok is False
    [(level, text)] = messages_shown(response)
    assert level == "warning"
    assert text.startswith("Saved “Work”. The connection test failed — auth_failed:")
    assert '<span class="badge error">failing</span>' in html(response)
    assert "0123456789" not in html(response)


def test_adding_without_a_needed_key_shows_the_error_at_the_field(alice, client_for):
    response = client_for(alice).post("/settings/providers/add/", add_form(api_key=""))

    assert response.status_code == 400
    field = re.search(
        r'<div class="field has-error">\s*<label for="id_api_key">.*?</div>\s*(<ul class="errors".*?</ul>)',
        html(response),
        re.S,
    )
    assert field, "the key field shows no error"
    assert "OpenAI needs an API key." in field.group(1)
    assert not ProviderCredential.objects.exclude(preset="echo").exists()


def test_adding_with_a_malformed_base_url_shows_a_clear_error(alice, client_for):
    response = client_for(alice).post(
        "/settings/providers/add/",
        add_form(preset="openai_compatible", api_key="", base_url="ftp://gpu-box/v1"),
    )

    assert response.status_code == 400
    assert "Invalid URL: only http and https URLs are allowed." in html(response)
    assert not ProviderCredential.objects.exists()


def test_the_add_form_preselects_the_preset_and_its_local_default(alice, client_for):
    page = html(client_for(alice).get("/settings/providers/add/?preset=openai_compatible"))

    assert '<option value="openai_compatible" selected>OpenAI-compatible server</option>' in page
    assert re.search(r'<input type="checkbox" name="is_local"[^>]*checked', page)


def test_a_foreign_team_as_owner_is_not_found(team, charlie_outsider, client_for):
    response = client_for(charlie_outsider).post(
        "/settings/providers/add/", add_form(owner_team=team.pk)
    )

    assert response.status_code == 404
    assert not ProviderCredential.objects.filter(owner_team=team).exists()


def test_only_teams_the_user_manages_are_offered_as_owner(alice, team, bob_teammate, client_for):
    assert owner_options(client_for(alice).get("/settings/providers/add/")) == ["", str(team.pk)]
    assert owner_options(client_for(bob_teammate).get("/settings/providers/add/")) == [""]

    refused = client_for(bob_teammate).post(
        "/settings/providers/add/", add_form(owner_team=team.pk)
    )
    assert refused.status_code in (403, 404)
    assert not ProviderCredential.objects.filter(owner_team=team).exists()


def test_an_owner_working_in_the_team_gets_the_team_preselected(
    alice, team, client_for, fake_provider
):
    client = in_team(client_for(alice), team)

    page = html(client.get("/settings/providers/add/"))
    assert f'<option value="{team.pk}" selected>' in page

    client.post(
        "/settings/providers/add/", add_form(owner_team=team.pk, base_url=f"{fake_provider.url}/v1")
    )
    assert ProviderCredential.objects.get(name="Work").owner_team == team


# --- Editing, toggling, deleting ------------------------------------------------------------------


def test_editing_with_an_empty_key_keeps_the_stored_key(alice, client_for, make_credential):
    credential = make_credential(alice, "openai", name="Work")
    client = client_for(alice)
    form = client.get(f"/settings/providers/{credential.pk}/edit/")
    assert "Stored key: <code>sk-…6789</code>" in html(form)
    assert KEY not in html(form)
    assert 'name="api_key"' in html(form)
    # The key field has no value (a CSRF token may well start with "sk": look at the field only).
    key_input = re.search(r'<input[^>]*name="api_key"[^>]*>', html(form)).group(0)
    assert "value=" not in key_input or 'value=""' in key_input

    response = client.post(
        f"/settings/providers/{credential.pk}/edit/",
        {
            "name": "Work main",
            "api_key": "",
            "base_url": credential.base_url,
            "organization": "org-7",
            "is_active": "on",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == f"/settings/providers/{credential.pk}/"
    credential.refresh_from_db()
    assert (credential.name, credential.organization, credential.is_active) == (
        "Work main",
        "org-7",
        True,
    )
    assert credential.api_key == KEY


def test_editing_the_base_url_clears_the_key(alice, client_for, make_credential):
    credential = make_credential(alice, "openai", name="Work")

    client_for(alice).post(
        f"/settings/providers/{credential.pk}/edit/",
        {
            "name": "Work",
            "api_key": "",
            "base_url": "https://proxy.example.com/v1",
            "is_active": "on",
        },
    )

    credential.refresh_from_db()
    assert credential.base_url == "https://proxy.example.com/v1"
    assert credential.api_key == ""


def test_members_cannot_edit_toggle_or_delete_team_credentials(
    team, bob_teammate, client_for, make_credential
):
    credential = make_credential(team, "openai", name="Acme OpenAI")
    bob = client_for(bob_teammate)

    assert bob.get(f"/settings/providers/{credential.pk}/edit/").status_code == 403
    assert (
        bob.post(
            f"/settings/providers/{credential.pk}/edit/", {"name": "Bob's", "is_active": "on"}
        ).status_code
        == 403
    )
    assert bob.post(f"/settings/providers/{credential.pk}/toggle/").status_code == 403
    assert bob.post(f"/settings/providers/{credential.pk}/delete/").status_code == 403
    credential.refresh_from_db()
    assert (credential.name, credential.is_active) == ("Acme OpenAI", True)


def test_toggle_deactivates_and_activates(alice, client_for, make_credential):
    credential = make_credential(alice, "openai", name="Work")
    client = client_for(alice)

    off = client.post(f"/settings/providers/{credential.pk}/toggle/", follow=True)
    credential.refresh_from_db()
    assert credential.is_active is False
    assert messages_shown(off) == [("success", "“Work” is deactivated.")]
    assert '<span class="badge">inactive</span>' in html(off)
    assert ">Activate</button>" in html(off)
    assert 'id="try"' not in html(off)  # no trying an inactive credential

    on = client.post(f"/settings/providers/{credential.pk}/toggle/", follow=True)
    credential.refresh_from_db()
    assert credential.is_active is True
    assert messages_shown(on) == [("success", "“Work” is active.")]
    assert ">Deactivate</button>" in html(on)


def test_toggle_needs_post(alice, client_for, make_credential):
    credential = make_credential(alice, "openai")

    assert client_for(alice).get(f"/settings/providers/{credential.pk}/toggle/").status_code == 405


def test_delete_asks_first_then_deletes_and_keeps_usage(alice, client_for, make_credential):
    credential = make_credential(alice, "openai", name="Work")
    row = UsageRecord.objects.create(
        user=alice,
        credential=credential,
        credential_name="Work",
        preset="openai",
        model="gpt-4o-mini",
        status="ok",
    )
    client = client_for(alice)

    confirm = client.get(f"/settings/providers/{credential.pk}/delete/")
    assert confirm.status_code == 200
    assert "Delete “Work”?" in html(confirm)
    assert ProviderCredential.objects.filter(pk=credential.pk).exists()

    deleted = client.post(f"/settings/providers/{credential.pk}/delete/")
    assert deleted.status_code == 302
    assert deleted["Location"] == "/settings/providers/"
    assert not ProviderCredential.objects.filter(pk=credential.pk).exists()
    assert messages_shown(client.get("/settings/providers/")) == [
        ("success", "Deleted “Work”. Its usage history is kept.")
    ]
    row.refresh_from_db()
    assert (row.credential_id, row.credential_name) == (None, "Work")
    assert client.get(f"/settings/providers/{credential.pk}/").status_code == 404


# --- The detail page ------------------------------------------------------------------------------


def test_the_detail_page_lists_models_with_prices_unpriced_and_local_badges(
    alice, client_for, make_credential, fake_provider
):
    fake_provider.configure(models={"openai": ["gpt-4o-mini", "mystery-model-x"]})
    paid = make_credential(alice, "openai", name="Work")
    local = make_credential(alice, "openai_compatible", name="GPU box", api_key="", is_local=True)
    services.catalogue_refresh(actor=alice, credential=paid)
    services.catalogue_refresh(actor=alice, credential=local)
    client = client_for(alice)

    page = html(client.get(f"/settings/providers/{paid.pk}/"))
    rows = dict(re.findall(r"<tr>\s*<td><code>([^<]+)</code>(.*?)</tr>", page, re.S))
    assert set(rows) == {"gpt-4o-mini", "mystery-model-x"}
    assert "<td>$0.15</td><td>$0.60" in rows["gpt-4o-mini"]
    assert ">unpriced</span>" in rows["mystery-model-x"]
    assert "local · $0.00" not in page
    assert "<code>sk-…6789</code>" in page
    assert KEY not in page

    local_page = html(client.get(f"/settings/providers/{local.pk}/"))
    local_rows = dict(re.findall(r"<tr>\s*<td><code>([^<]+)</code>(.*?)</tr>", local_page, re.S))
    assert set(local_rows) == {"gpt-4o-mini", "mystery-model-x"}
    assert all(">local · $0.00</span>" in row for row in local_rows.values())
    assert "unpriced</span>" not in local_page


def test_the_echo_page_is_ready_to_try_without_a_refresh(alice, client_for, fake_provider):
    """BUG (usability): the personal Echo credential is created with an empty catalogue, so its
    page says "No models listed" and the Try-it model box is empty (and `required`): pressing
    Send does nothing until the user clicks "Refresh list" or knows to type `echo`."""
    client = client_for(alice)
    client.get("/settings/providers/")
    echo = ProviderCredential.objects.get(owner_user=alice, preset="echo")

    page = html(client.get(f"/settings/providers/{echo.pk}/"))

    assert re.search(r'<input type="text" id="try-model" name="model"[^>]*value="echo"', page)
    assert "<code>echo</code>" in page
    assert fake_provider.requests == []


def test_the_detail_page_has_test_refresh_edit_delete_and_try_for_the_owner(
    alice, client_for, make_credential
):
    credential = make_credential(alice, "openai", name="Work")

    page = html(client_for(alice).get(f"/settings/providers/{credential.pk}/"))

    assert "Test connection</button>" in page
    assert f'hx-post="/settings/providers/{credential.pk}/test/"' in page
    assert 'hx-target="#test-result"' in page
    assert "Refresh list</button>" in page
    assert f'href="/settings/providers/{credential.pk}/edit/"' in page
    assert f'href="/settings/providers/{credential.pk}/delete/"' in page
    assert 'id="try"' in page
    assert f'data-credential="{credential.pk}"' in page
    assert "untested" in page
    assert "Not listed yet." in page


def test_the_htmx_connection_test_also_refreshes_the_models_table(
    alice, client_for, make_credential, fake_provider
):
    """BUG 14: after a successful test the models table still said "No models listed" until a
    reload. The test response carries the catalogue card too (swapped out of band)."""
    credential = make_credential(alice, "openai")
    client = client_for(alice)
    assert "No models listed." in html(client.get(f"/settings/providers/{credential.pk}/"))

    ok = client.post(f"/settings/providers/{credential.pk}/test/", headers={"HX-Request": "true"})

    body = html(ok)
    assert '<div class="card" id="catalogue" hx-swap-oob="true">' in body
    assert "<code>gpt-4o-mini</code>" in body
    assert "Listed just now." in body
    assert "No models listed" not in body


def test_the_htmx_connection_test_returns_only_the_result_partial(
    alice, client_for, make_credential, fake_provider
):
    credential = make_credential(alice, "openai")
    client = client_for(alice)

    ok = client.post(f"/settings/providers/{credential.pk}/test/", headers={"HX-Request": "true"})
    assert ok.status_code == 200
    assert html(ok).startswith('<span id="test-result">')
    assert html(ok).count("<html") == 0
    assert '<span class="badge active">connected</span>' in html(ok)
    assert "3 models available." in html(ok)
    assert "<html" not in html(ok)

    fake_provider.configure(echo_auth=True)
    failed = client.post(
        f"/settings/providers/{credential.pk}/test/", headers={"HX-Request": "true"}
    )
    assert '<span class="badge error">failing</span>' in html(failed)
    assert "auth_failed" in html(failed)
    assert "0123456789" not in html(failed)


def test_the_connection_test_without_htmx_redirects_with_a_message(
    alice, client_for, make_credential, fake_provider
):
    credential = make_credential(alice, "openai")

    response = client_for(alice).post(f"/settings/providers/{credential.pk}/test/", follow=True)

    [(level, text)] = messages_shown(response)
    assert level == "success"
    assert text.startswith("Connected in ")


def test_refresh_list_replaces_the_models_and_says_how_many(
    alice, client_for, make_credential, fake_provider
):
    credential = make_credential(alice, "openai")
    ProviderModel.objects.create(credential=credential, model_id="gpt-3-retired")

    response = client_for(alice).post(f"/settings/providers/{credential.pk}/refresh/", follow=True)

    assert messages_shown(response) == [("success", "3 models listed.")]
    assert "gpt-3-retired" not in html(response)
    assert "<code>text-embedding-3-small</code>" in html(response)


def test_a_failed_refresh_says_why(alice, client_for, make_credential, fake_provider):
    credential = make_credential(alice, "openai")
    fake_provider.configure(echo_auth=True)

    response = client_for(alice).post(f"/settings/providers/{credential.pk}/refresh/", follow=True)

    [(level, text)] = messages_shown(response)
    assert level == "error"
    assert text.startswith("Could not list models: ")
    assert "0123456789" not in html(response)


def test_a_viewer_sees_the_team_credential_but_no_controls_to_change_or_use_it(
    team, vera_viewer, client_for, make_credential
):
    credential = make_credential(team, "openai", name="Acme OpenAI")

    response = client_for(vera_viewer).get(f"/settings/providers/{credential.pk}/")

    page = html(response)
    assert response.status_code == 200
    assert '<h2 data-testid="credential-name">Acme OpenAI</h2>' in page
    assert "team “Acme”" in page
    assert "/edit/" not in page
    assert "/delete/" not in page
    assert "/toggle/" not in page
    assert "Test connection" not in page
    assert 'id="try"' not in page
    assert "data-try" not in page
    assert KEY not in page
    assert (
        client_for(vera_viewer).post(f"/settings/providers/{credential.pk}/test/").status_code
        == 403
    )


def test_a_member_may_try_a_team_credential_but_not_change_it(
    team, bob_teammate, client_for, make_credential
):
    credential = make_credential(team, "openai", name="Acme OpenAI")

    page = html(client_for(bob_teammate).get(f"/settings/providers/{credential.pk}/"))

    assert 'id="try"' in page
    assert "Test connection" in page
    assert "/edit/" not in page
    assert "/delete/" not in page


def test_an_outsider_gets_404_everywhere(team, charlie_outsider, client_for, make_credential):
    credential = make_credential(team, "openai")
    charlie = client_for(charlie_outsider)

    for action in ("", "edit/", "delete/"):
        assert charlie.get(f"/settings/providers/{credential.pk}/{action}").status_code == 404
    for action in ("test/", "refresh/", "toggle/", "delete/"):
        assert charlie.post(f"/settings/providers/{credential.pk}/{action}").status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(client_for, db):
    response = client_for(None).get("/settings/providers/")

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


# --- Content security ------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["list", "add", "detail", "edit", "delete"])
def test_pages_have_no_inline_script_and_the_csp_forbids_it(
    alice, client_for, make_credential, page
):
    credential = make_credential(alice, "openai")
    services.catalogue_refresh(actor=alice, credential=credential)
    url = {
        "list": "/settings/providers/",
        "add": "/settings/providers/add/",
        "detail": f"/settings/providers/{credential.pk}/",
        "edit": f"/settings/providers/{credential.pk}/edit/",
        "delete": f"/settings/providers/{credential.pk}/delete/",
    }[page]

    response = client_for(alice).get(url)

    assert response.status_code == 200
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html(response), re.S)
    assert scripts
    for attributes, body in scripts:
        assert body.strip() == "", f"inline script: {body[:80]!r}"
        assert "src=" in attributes
    assert not re.search(r"\son[a-z]+\s*=", html(response)), "inline event handler"
    directives = dict(
        [*part.strip().split(" ", 1), ""][:2]
        for part in response["Content-Security-Policy"].split(";")
        if part.strip()
    )
    script_src = directives.get("script-src", directives.get("default-src"))
    assert "'self'" in script_src
    assert "unsafe-inline" not in script_src
    assert "unsafe-eval" not in script_src
    if page == "detail":
        assert '<script src="/static/providers/try.js" type="module"></script>' in html(response)


def test_a_ten_dollar_price_reads_ten_dollars_never_1e_plus_1(
    alice, client_for, make_credential, fake_provider
):
    """BUG (issue 9, bug 8): an override of $10 per 1M tokens rendered as `$1E+1`."""
    from billing.models import PriceOverride

    PriceOverride.objects.create(
        provider_id="openai", model="gpt-4o", input_per_mtok=10, output_per_mtok=30
    )
    credential = make_credential(alice, "openai", name="Work")
    services.catalogue_refresh(actor=alice, credential=credential)
    client = client_for(alice)

    page = html(client.get(f"/settings/providers/{credential.pk}/"))
    row = dict(re.findall(r"<tr>\s*<td><code>([^<]+)</code>(.*?)</tr>", page, re.S))["gpt-4o"]
    assert "<td>$10.00</td><td>$30.00" in row
    assert "E+" not in page
    models = client.get(f"/api/credentials/{credential.pk}/models/").json()
    gpt_4o = next(m for m in models if m["id"] == "gpt-4o")
    assert (gpt_4o["input_per_mtok"], gpt_4o["output_per_mtok"]) == ("10", "30")


# --- Base URLs: the same endpoint spelled differently keeps the key (bug 9) -------------------


def edit(client, credential, **fields):
    return client.post(
        f"/settings/providers/{credential.pk}/edit/",
        {"name": credential.name, "api_key": "", "is_active": "on", **fields},
        follow=True,
    )


@pytest.mark.parametrize(
    "spelling",
    [
        "{url}/v1/",  # a trailing slash
        " {url}/v1 ",  # spaces around it
        "{URL}/v1",  # scheme and host in capitals
    ],
)
def test_the_same_base_url_spelled_differently_keeps_the_key(
    spelling, alice, client_for, make_credential, fake_provider
):
    credential = make_credential(alice, "openai_compatible", name="Box")
    credential.last_test_ok, credential.last_test_message = True, "Connected in 5 ms"
    credential.save()
    url = fake_provider.url
    typed = spelling.format(url=url, URL=url.upper().replace("HTTP://", "HTTP://"))

    response = edit(client_for(alice), credential, base_url=typed)

    credential.refresh_from_db()
    assert credential.api_key == KEY
    assert credential.last_test_ok is True  # same endpoint: the last test still holds
    assert ("success", "Saved “Box”.") in messages_shown(response)


def test_a_default_url_typed_out_is_the_same_endpoint(alice, client_for, make_credential):
    credential = make_credential(alice, "openai", name="Work", base_url="")

    edit(client_for(alice), credential, base_url="https://api.openai.com/v1/")

    credential.refresh_from_db()
    assert credential.api_key == KEY


def test_a_really_new_endpoint_says_at_once_that_the_key_was_cleared(
    alice, client_for, make_credential
):
    credential = make_credential(alice, "openai", name="Work")
    credential.last_test_ok, credential.last_test_message = True, "Connected in 5 ms"
    credential.save()

    response = edit(client_for(alice), credential, base_url="https://proxy.example.com/v1")

    credential.refresh_from_db()
    assert credential.api_key == ""
    level, text = messages_shown(response)[0]
    assert level == "warning"
    assert "the stored API key was cleared" in text
    # And the page doesn't contradict itself: untested, with no old "Connected…" next to it.
    page = html(response)
    assert '<span class="badge">untested</span>' in page
    assert "Connected in 5 ms" not in page
    assert '<span class="badge error">missing</span>' in page


def test_a_new_key_resets_the_connection_status_and_its_message(alice, client_for, make_credential):
    credential = make_credential(alice, "openai", name="Work")
    credential.last_test_ok, credential.last_test_message = False, "auth_failed: bad key"
    credential.save()

    response = edit(client_for(alice), credential, api_key="sk-a-new-key-424242")

    credential.refresh_from_db()
    assert (credential.last_test_ok, credential.last_test_message) == (None, "")
    assert "auth_failed" not in html(response)
