"""The one money format (billing.money): what every page, frame, export and label shows."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.template import Context, Template

from billing import money

# (amount, shown) — the table the browser twin (money.js) is held to as well.
CASES = [
    ("10", "$10.00"),
    ("1E+1", "$10.00"),
    (Decimal("1E+1"), "$10.00"),
    ("0E-9", "$0.00"),
    (0, "$0.00"),
    ("0.5", "$0.50"),
    ("0.1", "$0.10"),
    ("0.15", "$0.15"),
    ("0.075", "$0.075"),
    ("0.0153", "$0.015"),
    ("0.00042", "$0.00042"),
    ("0.000420000", "$0.00042"),
    ("0.000012345", "$0.000012"),
    ("0.000000001", "$0.000000001"),
    ("0.125", "$0.13"),
    ("0.00995", "$0.01"),
    ("0.996", "$1.00"),
    ("1", "$1.00"),
    ("2.5", "$2.50"),
    ("1234.565", "$1,234.57"),
    ("1234567.891", "$1,234,567.89"),
    ("-0.123", "-$0.12"),
    ("-12.5", "-$12.50"),
]


@pytest.mark.parametrize(("amount", "shown"), CASES)
def test_amounts_read_as_dollars_with_enough_digits_and_never_scientific(amount, shown):
    assert money.usd(amount) == shown


def test_no_amount_at_all_is_unpriced_never_a_silent_zero():
    assert money.usd(None) == "unpriced"
    assert money.usd("garbage") == "unpriced"
    assert money.usd(float("nan")) == "unpriced"


def test_a_call_says_where_its_cost_comes_from():
    assert money.cost_label(Decimal("0.0042"), "provider") == "$0.0042"
    assert money.cost_label(Decimal("0.0042"), "estimated") == "$0.0042 est."
    assert money.cost_label(Decimal(0), "local") == "$0.00 local"
    assert money.cost_label(None, "unpriced") == "unpriced"
    assert money.cost_label(None, "provider") == "unpriced"


def test_a_total_says_what_it_leaves_out():
    assert money.total_label(Decimal("4.12"), unpriced=3) == "$4.12 + 3 unpriced calls"
    assert money.total_label(Decimal("4.12"), unpriced=1) == "$4.12 + 1 unpriced call"
    assert money.total_label(None, unpriced=2) == "$0.00 + 2 unpriced calls"
    assert money.total_label(Decimal("0.5"), estimated=2) == "$0.50 (2 estimated)"
    assert money.total_label(Decimal("0.5")) == "$0.50"


def test_api_decimals_are_plain_strings():
    assert money.decimal_str(Decimal("1E+1")) == "10"
    assert money.decimal_str(Decimal("0E-9")) == "0"
    assert money.decimal_str(Decimal("0.000000001")) == "0.000000001"
    assert money.decimal_str(Decimal("0.150000")) == "0.15"
    assert money.decimal_str(None) is None


def test_the_template_filters_explain_local_unpriced_and_estimated_costs():
    template = Template(
        "{% load money %}{{ a|usd }}|{{ a|cost:'estimated' }}|{{ z|cost:'local' }}|"
        "{{ n|cost:'unpriced' }}|{% cost_total a unpriced=2 %}"
    )
    html = template.render(Context({"a": Decimal("1E+1"), "z": Decimal(0), "n": None}))
    usd, estimated, local, unpriced, total = html.split("|")
    assert usd == "$10.00"
    assert "$10.00 <abbr" in estimated and "counted locally" in estimated
    assert ">$0.00 local<" in local and "title=" in local
    assert ">unpriced<" in unpriced and "No price is known" in unpriced
    assert total == "$10.00 + 2 unpriced calls"
