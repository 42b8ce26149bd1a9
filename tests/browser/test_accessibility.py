"""axe-core over every page, light and dark (issue 9): no serious or critical violation.

"Every page" is every URL name the access matrix knows — and the matrix fails when a route has
no case (test_every_route_has_a_case) — so a page another engineer adds later is crawled here
with the ids of the matrix's world, with no change to this file. Each GET case is opened as the
first persona that gets a 200 (alice, then anonymous); pages no persona may see (superuser
pages) are opened as a superuser. Responses that aren't HTML (exports, CSS, JSON) are skipped.

axe-core comes inside the `axe-playwright-python` wheel (axe.min.js): nothing is downloaded."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.urls import reverse

from accounts.models import User
from conftest import PASSWORD
from tests.access_matrix import is_exempt
from tests.test_access_matrix import ALL_CASES, build_world

# Third-party pages we serve but don't write, each with the reason.
NOT_OURS = {
    "api-docs": "Swagger UI (drf-spectacular-sidecar) renders its own markup at run time.",
}
SERIOUS = {"serious", "critical"}
# In dark mode only what the theme changes: colours.
DARK_RULES = {"runOnly": {"type": "rule", "values": ["color-contrast", "link-in-text-block"]}}
# htmx fragments (a picker, a dialog's form, a diff) answer a part of a page, not a document:
# everything is checked but the rules about a whole document.
DOCUMENT_RULES = [
    "document-title",
    "html-has-lang",
    "landmark-one-main",
    "page-has-heading-one",
    "region",
]
FRAGMENT_RULES = {"rules": {rule: {"enabled": False} for rule in DOCUMENT_RULES}}

axe = Axe()


def _pages(world) -> list[tuple[str, str, str]]:
    """(who, url, case id) for every GET page of the matrix, once per URL."""
    seen, pages = set(), []
    for case in ALL_CASES:
        if case.method != "GET" or case.api or is_exempt(case.name) or case.name in NOT_OURS:
            continue
        if case.name.startswith("api-"):
            continue
        if case.expect.get("alice") == 200:
            who = "alice"
        elif case.expect.get("anonymous") == 200:
            who = "anonymous"
        elif all(status == 404 for p, status in case.expect.items() if p != "anonymous"):
            who = "root"  # superusers only
        else:
            continue  # no page to look at (a redirect for everyone)
        url = reverse(case.name, kwargs=case.kwargs(world))
        if case.query:
            url += "?" + urlencode(case.query(world))
        if url not in seen:
            seen.add(url)
            pages.append((who, url, case.id))
    # Pages no GET case reaches: the error pages.
    pages.append(("alice", "/no-such-page/", "404 page"))
    return pages


def _login(context, base_url, username):
    page = context.new_page()
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)
    return page


def _describe(violation) -> str:
    nodes = "; ".join(
        f"{node['target']} {node.get('failureSummary', '')[:160]!r}"
        for node in violation["nodes"][:4]
    )
    return f"{violation['id']} ({violation['impact']}): {violation['help']} — {nodes}"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_has_no_serious_accessibility_violation(
    scheme, browser, live_server_url, transactional_db, screenshot
):
    world = build_world()
    User.objects.create_superuser(username="root", email="root@example.com", password=PASSWORD)
    contexts, pages, failures, errors, checked = {}, {}, [], [], []
    try:
        for who in ("anonymous", "alice", "root"):
            context = browser.new_context(
                base_url=live_server_url,
                color_scheme=scheme,
                viewport={"width": 1280, "height": 800},
            )
            contexts[who] = context
            pages[who] = (
                context.new_page() if who == "anonymous" else _login(context, live_server_url, who)
            )
            pages[who].on(
                "console",
                lambda msg, who=who: (
                    errors.append(f"{who}: {msg.text}")
                    if msg.type == "error" and "status of 404" not in msg.text
                    else None
                ),
            )
        for who, url, case_id in _pages(world):
            page = pages[who]
            # Downloads (exports) and stylesheets aren't pages: ask first, with the same cookies.
            head = page.context.request.get(url, max_redirects=0)
            if "text/html" not in (head.headers.get("content-type") or ""):
                continue
            fragment = "<html" not in head.text()[:2000].lower()
            page.goto(url)
            options = DARK_RULES if scheme == "dark" else (FRAGMENT_RULES if fragment else None)
            results = axe.run(page, options=options)
            checked.append(url)
            for violation in results.response["violations"]:
                if violation["impact"] in SERIOUS:
                    failures.append(f"{who} {url} [{case_id}]: {_describe(violation)}")
    finally:
        for context in contexts.values():
            context.close()
    assert len(checked) >= 30, checked  # the crawl really ran over the app
    assert not failures, f"{len(failures)} serious/critical violations:\n" + "\n".join(failures)
    assert not errors, errors
