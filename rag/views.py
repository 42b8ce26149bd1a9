"""Collections pages: list, create/edit/delete, a collection with its documents (upload, paste,
fetch a page, progress, cancel, retry, delete), the search page and a chunk's page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts import access
from accounts.access import Action
from accounts.views import _form_errors
from rag import selectors, services, uploads
from rag.forms import CollectionEditForm, CollectionForm, PasteForm, SearchForm, UrlForm
from rag.models import Chunk


def _can(user, collection, action) -> bool:
    return access.allows(user, collection, action)


@login_required
def collection_list(request):
    collections = selectors.collections_for_user(user=request.user, team=request.team)
    page = Paginator(collections, 25).get_page(request.GET.get("page"))
    return render(request, "rag/collection_list.html", {"page": page, "nav_active": "collections"})


@login_required
def collection_new(request):
    initial = {}
    if request.team is not None and access.allows(request.user, request.team, Action.WRITE):
        initial["owner_team"] = request.team.pk
    form = CollectionForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            collection = services.collection_create(actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"Created “{collection.name}”. Add documents below.")
            return redirect("rag:detail", pk=collection.pk)
    return render(
        request,
        "rag/collection_form.html",
        {"form": form, "nav_active": "collections", "adding": True},
        status=400 if request.method == "POST" else 200,
    )


def _detail_context(request, collection) -> dict:
    documents = selectors.documents_for(user=request.user, collection=collection)
    return {
        "collection": collection,
        "page": Paginator(documents, 50).get_page(request.GET.get("page")),
        "status": selectors.ingestion_status(user=request.user, collection=collection),
        "can_write": _can(request.user, collection, Action.WRITE),
        "can_manage": _can(
            request.user, collection, Action.MANAGE if collection.owner_team_id else Action.WRITE
        ),
        "paste_form": PasteForm(),
        "url_form": UrlForm(),
        "max_upload_mb": f"{uploads.max_upload_bytes() / 1048576:g}",
        "nav_active": "collections",
    }


@login_required
def collection_detail(request, pk):
    collection = selectors.collection_for_user(user=request.user, pk=pk)
    context = _detail_context(request, collection)
    if request.htmx and request.GET.get("partial") == "documents":
        return render(request, "rag/collection_detail.html#documents", context)
    return render(request, "rag/collection_detail.html", context)


@login_required
def collection_edit(request, pk):
    collection = selectors.collection_for_user(user=request.user, pk=pk, action=Action.WRITE)
    initial = {
        "name": collection.name,
        "description": collection.description,
        **CollectionEditForm.embedder_initial(collection),
        "chunk_size": collection.chunk_size,
        "chunk_overlap": collection.chunk_overlap,
    }
    form = CollectionEditForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            updated = services.collection_update(
                actor=request.user, collection=collection, **form.cleaned_data
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            note = (
                " Re-embedding every chunk in the background."
                if updated.reembed_state == "running"
                and updated.generation != collection.generation
                else ""
            )
            messages.success(request, f"Saved “{updated.name}”.{note}")
            return redirect("rag:detail", pk=collection.pk)
    return render(
        request,
        "rag/collection_form.html",
        {"form": form, "collection": collection, "nav_active": "collections"},
        status=400 if request.method == "POST" else 200,
    )


@login_required
def collection_delete(request, pk):
    collection = selectors.collection_for_user(user=request.user, pk=pk)
    access.require(
        request.user, collection, Action.MANAGE if collection.owner_team_id else Action.WRITE
    )
    if request.method == "POST":
        services.collection_delete(actor=request.user, collection=collection)
        messages.success(request, f"Deleted “{collection.name}” and its documents.")
        return redirect("rag:index")
    return render(
        request,
        "rag/collection_delete.html",
        {"collection": collection, "nav_active": "collections"},
    )


def _report(request, outcomes) -> None:
    for outcome in outcomes:
        if outcome.status == "added":
            messages.success(request, f"{outcome.name}: added, reading it now.")
        elif outcome.status == "duplicate":
            messages.info(request, f"{outcome.name}: already here — {outcome.message}")
        else:
            messages.error(request, f"{outcome.name}: not added — {outcome.message}")


@login_required
@require_POST
def document_upload(request, pk):
    collection = selectors.collection_for_user(user=request.user, pk=pk, action=Action.WRITE)
    files = request.FILES.getlist("files")  # parsed by now (CSRF read the body)
    refused = getattr(request, "upload_refused", {})
    outcomes = [services.Outcome(name, "refused", reason) for name, reason in refused.items()]
    for upload in files:
        outcomes.append(
            services.document_add_bytes(
                actor=request.user, collection=collection, filename=upload.name, data=upload.read()
            )
        )
    if not outcomes:
        messages.error(request, "Choose one or more files to upload.")
    _report(request, outcomes)
    return redirect("rag:detail", pk=collection.pk)


@login_required
@require_POST
def document_paste(request, pk):
    collection = selectors.collection_for_user(user=request.user, pk=pk, action=Action.WRITE)
    form = PasteForm(request.POST)
    if form.is_valid():
        try:
            _report(
                request,
                [
                    services.document_paste(
                        actor=request.user, collection=collection, **form.cleaned_data
                    )
                ],
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
    else:
        messages.error(request, "Paste some text (at most 1,000,000 characters).")
    return redirect("rag:detail", pk=collection.pk)


@login_required
@require_POST
def document_fetch(request, pk):
    collection = selectors.collection_for_user(user=request.user, pk=pk, action=Action.WRITE)
    form = UrlForm(request.POST)
    if form.is_valid():
        try:
            services.document_add_url(
                actor=request.user, collection=collection, url=form.cleaned_data["url"]
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, "Fetching the page now.")
    else:
        messages.error(request, "Give a web page address.")
    return redirect("rag:detail", pk=collection.pk)


def _document_action(request, pk, document_id, action_name):
    collection = selectors.collection_for_user(user=request.user, pk=pk)
    document = selectors.document_for_user(user=request.user, pk=document_id, collection=collection)
    try:
        if action_name == "cancel":
            services.document_cancel(actor=request.user, document=document)
            messages.success(request, f"Cancelled “{document.title}”.")
        elif action_name == "retry":
            services.document_retry(actor=request.user, document=document)
            messages.success(request, f"Reading “{document.title}” again.")
        else:
            services.document_delete(actor=request.user, document=document)
            messages.success(request, f"Deleted “{document.title}” and its chunks.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("rag:detail", pk=collection.pk)


@login_required
@require_POST
def document_cancel(request, pk, document_id):
    return _document_action(request, pk, document_id, "cancel")


@login_required
@require_POST
def document_retry(request, pk, document_id):
    return _document_action(request, pk, document_id, "retry")


@login_required
@require_POST
def document_delete(request, pk, document_id):
    return _document_action(request, pk, document_id, "delete")


@login_required
def collection_search(request, pk):
    collection = selectors.collection_for_user(user=request.user, pk=pk)
    form = SearchForm(request.GET or None)
    result = None
    if form.is_valid() and form.cleaned_data.get("q"):
        data = form.cleaned_data
        result = selectors.chunk_search(
            user=request.user,
            collections=[collection],
            query=data["q"],
            top_k=data.get("top_k") or 8,
            threshold=data["threshold"] if data.get("threshold") is not None else 0.25,
            mode=data.get("mode") or "hybrid",
            feature="search",
        )
    context = {
        "collection": collection,
        "form": form,
        "result": result,
        "nav_active": "collections",
    }
    if request.htmx:
        return render(request, "rag/search.html#results", context)
    return render(request, "rag/search.html", context)


@login_required
def chunk_detail(request, pk, chunk_id):
    """A cited chunk with its neighbours (citations in chat open this page)."""
    collection = selectors.collection_for_user(user=request.user, pk=pk)
    chunk = (
        Chunk.objects.select_related("document").filter(pk=chunk_id, collection=collection).first()
    )
    if chunk is None:
        from django.http import Http404

        raise Http404
    neighbours = Chunk.objects.filter(
        document_id=chunk.document_id, ordinal__in=[chunk.ordinal - 1, chunk.ordinal + 1]
    ).order_by("ordinal")
    return render(
        request,
        "rag/chunk.html",
        {
            "collection": collection,
            "chunk": chunk,
            "neighbours": neighbours,
            "nav_active": "collections",
        },
    )
