"""Share links: the owner's page to create and revoke one, and the public read-only page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts import access
from chats import selectors, sharing
from chats.forms import ShareForm


@login_required
def conversation_share(request, pk):
    """GET: the link (if any) and its options; POST: a new link (replacing the old one)."""
    conversation = selectors.conversation_for_user(user=request.user, pk=pk)
    access.require(request.user, conversation, sharing.share_action(conversation))
    if request.method == "POST":
        form = ShareForm(request.POST)
        form.is_valid()  # two optional checkboxes: always valid
        sharing.share_link_create(
            actor=request.user, conversation=conversation, **form.cleaned_data
        )
        messages.success(
            request,
            "Share link created. Anyone with it can read this conversation — no account needed.",
        )
        return redirect("chats:share", pk=conversation.pk)
    link = sharing.share_link_active(conversation=conversation)
    return render(
        request,
        "chats/share.html",
        {
            "conversation": conversation,
            "link": link,
            "link_url": request.build_absolute_uri(f"/chat/shared/{link.token}/") if link else "",
            "form": ShareForm(
                initial={"show_costs": link.show_costs, "show_key_names": link.show_key_names}
                if link
                else {}
            ),
            "audience": selectors.audience(conversation=conversation),
            "nav_active": "chat",
        },
    )


@login_required
@require_POST
def share_revoke(request, pk):
    conversation = selectors.conversation_for_user(user=request.user, pk=pk)
    if sharing.share_link_revoke(actor=request.user, conversation=conversation):
        messages.success(request, "Share link revoked: it shows “not found” from now on.")
    return redirect("chats:share", pk=conversation.pk)


@never_cache
def shared(request, token):
    """The public, read-only page of a share link: the visible path as it is now. No ids, no
    costs and no credential names unless the owner opted in; nobody needs an account."""
    link = sharing.share_link_for_token(token=token)
    conversation = link.conversation
    view = selectors.conversation_view(conversation=conversation)
    response = render(
        request,
        "chats/shared.html",
        {"link": link, "conversation": conversation, "view": view},
    )
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response
