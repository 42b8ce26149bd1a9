"""The browser's money format (billing/static/billing/money.js) is the server's (billing/money.py):
the chat's path cost and anything else summed in the page read exactly like server-rendered money."""

from __future__ import annotations

from billing import money
from billing.tests.test_money import CASES


def test_the_browser_formats_every_amount_exactly_like_the_server(page):
    page.goto("/login/")
    amounts = [str(amount) for amount, _ in CASES]
    shown = page.evaluate(
        """async (amounts) => {
            const { formatUsd, parseUsd, sumUsd } = await import("/static/billing/money.js");
            return {
                each: amounts.map((a) => formatUsd(parseUsd(a))),
                sum: sumUsd(["0.000012345", "0.000000001", "", "0E-9", "1.5", "x"]),
                nothing: formatUsd(parseUsd("")),
            };
        }""",
        amounts,
    )
    assert shown["each"] == [money.usd(amount) for amount in amounts]
    assert shown["sum"] == money.usd("1.500012346")
    assert shown["nothing"] == "unpriced"
