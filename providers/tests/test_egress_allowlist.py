"""The egress allowlist superusers edit in the app (issue 9): it adds to WORKBENCH_EGRESS_ALLOW,
takes effect on the next call, and the refusal says how to allow a host."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User
from conftest import PASSWORD
from providers import egress_allow, services
from providers.models import EgressAllowEntry


@pytest.fixture
def root(db):
    return User.objects.create_superuser(username="root", email="", password=PASSWORD)


@pytest.fixture
def fake_not_allowed(fake_provider, settings):
    """The fake provider on loopback, with only the default allowlist (Ollama's port)."""
    settings.WORKBENCH_EGRESS_ALLOW = ["localhost:11434"]
    return fake_provider


def test_a_refused_host_says_how_to_allow_it_and_a_superuser_allows_it_in_the_app(
    root, alice, client_for, make_credential, fake_not_allowed
):
    credential = make_credential(alice, "openai_compatible", name="GPU box")

    ok, message = services.credential_test(actor=alice, credential=credential)

    assert not ok
    assert message.startswith("egress_denied") or "egress" in message
    authority = f"127.0.0.1:{fake_not_allowed.port}"
    assert f"a superuser adds {authority} under Settings → Egress allowlist" in message

    response = client_for(root).post(
        "/settings/providers/egress/", {"host_port": authority, "note": "the fake"}, follow=True
    )
    assert f"{authority} is allowed now." in response.content.decode()
    ok, message = services.credential_test(actor=alice, credential=credential)
    assert ok, message

    entry = EgressAllowEntry.objects.get()
    client_for(root).post(f"/settings/providers/egress/{entry.pk}/delete/")
    ok, _ = services.credential_test(actor=alice, credential=credential)
    assert not ok


def test_the_page_shows_the_environments_base_read_only(root, client_for, settings):
    settings.WORKBENCH_EGRESS_ALLOW = ["localhost:11434", "gpu.lan:8000"]

    html = client_for(root).get("/settings/providers/egress/").content.decode()

    assert "<code>localhost:11434</code>" in html and "<code>gpu.lan:8000</code>" in html
    assert html.count("WORKBENCH_EGRESS_ALLOW</span>") == 2


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("http://gpu.lan:8000", "no http://"),
        ("gpu.lan", "Give the port too"),
        ("gpu.lan:99999", "out of range"),
        ("localhost:11434", "already allowed"),
    ],
)
def test_bad_entries_are_refused_with_a_reason(typed, error, root, client_for):
    response = client_for(root).post("/settings/providers/egress/", {"host_port": typed})

    assert response.status_code == 400
    assert error in response.content.decode()
    assert not EgressAllowEntry.objects.exists()


def test_an_entry_is_normalised_and_added_once(root):
    egress_allow.entry_add(actor=root, host_port=" GPU-Box.LAN:8000 ")

    assert EgressAllowEntry.objects.get().host_port == "gpu-box.lan:8000"
    with pytest.raises(Exception, match="already allowed"):
        egress_allow.entry_add(actor=root, host_port="gpu-box.lan:8000")


def test_the_allowlist_page_is_not_found_for_everyone_but_superusers(alice, client_for, root):
    entry = egress_allow.entry_add(actor=root, host_port="gpu.lan:8000")
    for client in (client_for(alice), Client()):
        assert client.get("/settings/providers/egress/").status_code in (404, 302)
        assert client.post(
            "/settings/providers/egress/", {"host_port": "evil.lan:22"}
        ).status_code in (404, 302)
        client.post(f"/settings/providers/egress/{entry.pk}/delete/")
    assert list(EgressAllowEntry.objects.values_list("host_port", flat=True)) == ["gpu.lan:8000"]
