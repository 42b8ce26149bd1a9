import re

from playwright.sync_api import expect

from providers.models import ProviderModel


def test_dbg(page, login, alice, make_credential, fake_provider):
    c = make_credential(alice, "openai", name="X")
    ProviderModel.objects.create(credential=c, model_id="gpt-4o-mini", kind="chat")
    login(page, alice)
    page.goto("/playground/")
    page.get_by_test_id("new-comparison").first.click()
    page.wait_for_url(re.compile(r"/playground/\d+/$"))
    logs = []
    page.on("console", lambda m: logs.append(m.type + ": " + m.text))
    page.evaluate(
        "() => { htmx.logger = function(elt, event, data) { if (event.startsWith('htmx:before') || event.includes('Error') || event.includes('afterSwap') || event.includes('trigger')) console.log(event, elt && (elt.id || elt.tagName + '.' + elt.className)); }; }"
    )
    page.get_by_test_id("add-slot").click()
    expect(page.get_by_test_id("slot")).to_have_count(3)
    page.wait_for_timeout(500)
    print("AFTER FIRST", logs)
    logs.clear()
    page.get_by_test_id("add-slot").click()
    page.wait_for_timeout(1500)
    print("AFTER SECOND", logs)
    page.console_errors.clear()
