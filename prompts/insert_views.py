"""The prompt picker other pages embed (chat's composer, the playground): a searchable list of
the prompts the user may read, and a prompt's small form for its variables. Both are HTML
fragments drawn by the server (so user text is escaped in one place); `prompts/insert.js` puts
them in a dialog and renders the choice through `/api/prompts/<id>/render/`."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from prompts import selectors
from prompts.forms import values_form
from prompts.variables import Variable

PICKER_SIZE = 20


@login_required
def picker(request):
    q = request.GET.get("q", "").strip()[:200]
    templates = list(selectors.templates_readable(user=request.user, q=q)[: PICKER_SIZE + 1])
    return render(
        request,
        "prompts/insert.html#results",
        {"templates": templates[:PICKER_SIZE], "more": len(templates) > PICKER_SIZE, "q": q},
    )


@login_required
def insert_form(request, pk):
    template = selectors.template_for_user(user=request.user, pk=pk)
    ref = request.GET.get("version") or template.latest_number
    version = selectors.version_resolve(template=template, ref=ref)
    variables = [Variable.from_dict(v) for v in version.variables]
    labels = {}
    for label in selectors.labels_of(template=template):
        labels.setdefault(label.version.number, []).append(label.name)
    return render(
        request,
        "prompts/insert.html#form",
        {
            "template": template,
            "version": version,
            "variables": variables,
            "form": values_form(variables),
            "versions": [
                (v.number, labels.get(v.number, []))
                for v in selectors.versions_of(template=template)[:50]
            ],
        },
    )
