"""Names people give — a conversation's title, a team's, a collection's, a prompt's, a token's —
may be one long unbroken word (a pasted hash, a URL, a language without spaces). On a phone
the page wraps them and never scrolls sideways; a short page leaves the top bar its height."""

from __future__ import annotations

from playwright.sync_api import expect

from accounts import services as account_services
from chats import services as chat_services
from prompts import services as prompt_services
from providers import services as provider_services
from providers.models import ProviderModel
from rag import services as rag_services

PHONE = {"width": 390, "height": 844}
WORD = "Ω" + "x" * 95


def test_long_unbroken_names_wrap_on_a_phone_instead_of_pushing_the_page_sideways(
    browser, live_server_url, transactional_db, login, screenshot, alice
):
    team = account_services.team_create(user=alice, name=WORD[:60])
    echo = provider_services.credential_create(actor=alice, preset="echo", name="Echo")
    ProviderModel.objects.create(credential=echo, model_id="echo", kind="chat")
    conversation = chat_services.conversation_start(
        actor=alice, credential=echo, model="echo", title=WORD
    )
    collection = rag_services.collection_create(actor=alice, name=WORD)
    prompt = prompt_services.template_create(
        actor=alice, name=WORD, content=prompt_services.Content(user_text="y" * 300)
    )
    context = browser.new_context(base_url=live_server_url, viewport=PHONE)
    page = context.new_page()
    try:
        login(page, alice)
        pages = [
            "/chat/",
            f"/chat/{conversation.pk}/",
            f"/chat/{conversation.pk}/share/",
            f"/chat/{conversation.pk}/delete/",
            f"/collections/{collection.pk}/",
            f"/prompts/{prompt.pk}/",
            f"/settings/teams/{team.pk}/",
            f"/settings/teams/{team.pk}/delete/",
        ]
        for url in pages:
            page.goto(url)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], (url, width)
        screenshot(page, "long-names-team-delete-390")
        # A page shorter than the screen: the bar on top keeps its height.
        bar = page.locator(".sidebar").bounding_box()
        assert bar["height"] < 80, bar

        page.goto("/settings/tokens/")
        page.fill("input[name=name]", WORD)
        page.get_by_role("button", name="Create token").click()
        expect(page.get_by_test_id("new-token")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        screenshot(page, "long-names-token-390")
    finally:
        context.close()
