"""Conversations as message trees.

Each message has a parent (None for a first message); siblings are alternatives (an edited
question, a regenerated answer). The visible conversation is one path from a root to a leaf:
`Conversation.active_root` and each message's `active_child` say which sibling is chosen."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone

from accounts.ownership import Owned


class Conversation(Owned):
    title = models.CharField(max_length=200, blank=True)
    title_source = models.CharField(max_length=10, default="auto")  # auto | model | user
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The model new replies use; each message records the model that actually wrote it.
    credential = models.ForeignKey(
        "providers.ProviderCredential",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    model = models.CharField(max_length=200, blank=True)
    system_prompt = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True)  # temperature, top_p, max_tokens, seed
    active_root = models.ForeignKey(
        "Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cost_total = models.DecimalField(max_digits=18, decimal_places=9, default=0)  # all branches
    has_unpriced = models.BooleanField(default=False)
    message_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)  # last activity
    forked_from = models.ForeignKey(
        "Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Where documents attached to its messages are read into (made on the first one).
    files_collection = models.ForeignKey(
        "rag.Collection", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(Owned.Meta):
        ordering = ["-updated_at", "-id"]
        indexes = [
            models.Index(fields=["owner_user", "-updated_at"]),
            models.Index(fields=["owner_team", "-updated_at"]),
            GinIndex(OpClass(Upper("title"), name="gin_trgm_ops"), name="chats_conv_title_trgm"),
        ]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.pk}"

    @property
    def display_title(self) -> str:
        return self.title or "New conversation"


class MessageStatus(models.TextChoices):
    COMPLETE = "complete", "Complete"
    STREAMING = "streaming", "Streaming"
    STOPPED = "stopped", "Stopped"
    INTERRUPTED = "interrupted", "Interrupted"
    ERROR = "error", "Error"


class Message(models.Model):
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    active_child = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    role = models.CharField(max_length=10)  # user | assistant
    content = models.TextField(blank=True)
    # The content rendered (Markdown → HTML → sanitized) once, when the message is final, so a
    # long conversation's page doesn't re-render its history on every view.
    content_html = models.TextField(blank=True)
    html_version = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(
        max_length=12, choices=MessageStatus.choices, default=MessageStatus.COMPLETE
    )
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who answered, with what (assistant messages).
    credential = models.ForeignKey(
        "providers.ProviderCredential",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    credential_name = models.CharField(max_length=100, blank=True)
    preset = models.CharField(max_length=40, blank=True)
    model = models.CharField(max_length=200, blank=True)
    params = models.JSONField(default=dict, blank=True)
    usage = models.ForeignKey(
        "billing.UsageRecord", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A reasoning model's thinking (shown collapsed), and how long it thought: the first
    # reasoning delta to the first answer text.
    reasoning = models.TextField(blank=True)
    reasoning_ms = models.FloatField(null=True, blank=True)
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    # Parts of the above (genai-prices' way of counting): prompt-cache reads and writes are in
    # input_tokens, reasoning in output_tokens.
    cache_read_tokens = models.PositiveIntegerField(null=True, blank=True)
    cache_write_tokens = models.PositiveIntegerField(null=True, blank=True)
    reasoning_tokens = models.PositiveIntegerField(null=True, blank=True)
    tokens_estimated = models.BooleanField(default=False)
    cost = models.DecimalField(max_digits=18, decimal_places=9, null=True, blank=True)
    cost_source = models.CharField(max_length=20, blank=True)
    ttft_ms = models.FloatField(null=True, blank=True)
    tokens_per_second = models.FloatField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # The partial-text checkpoint's time while streaming: the reply's heartbeat.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # User messages: files and images went with it (saves a query when there are none).
    has_attachments = models.BooleanField(default=False)
    # Replies grounded in collections: {"context": the text the model received, "sources":
    # [{n, chunk, collection, document, title, page, heading}], "notices": [...]} — see
    # chats.retrieval. None: nothing was retrieved for it.
    retrieval = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["conversation", "parent"]),
            models.Index(
                fields=["status"],
                condition=models.Q(status="streaming"),
                name="chats_msg_streaming",
            ),
            GinIndex(OpClass(Upper("content"), name="gin_trgm_ops"), name="chats_msg_content_trgm"),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"

    @property
    def is_streaming(self) -> bool:
        return self.status == MessageStatus.STREAMING

    @property
    def html(self):
        """The rendered content: stored when current, else rendered now (older renderer)."""
        from django.utils.safestring import mark_safe

        from chats.rendering import RENDER_VERSION, render_markdown

        if self.html_version == RENDER_VERSION and (self.content_html or not self.content):
            return mark_safe(self.content_html)  # noqa: S308 - produced by render_markdown
        return render_markdown(self.content)


# --- Grounding: collections attached to a conversation, files and images attached to messages ----


class ConversationCollection(models.Model):
    """A collection a conversation's replies retrieve from. A team conversation takes only its
    team's collections, a personal one any collection its owner may read; the sender's access
    is checked again at every send (chats.retrieval)."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="collection_links"
    )
    collection = models.ForeignKey("rag.Collection", on_delete=models.CASCADE, related_name="+")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["added_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "collection"], name="chats_conv_collection_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.conversation_id} ← {self.collection_id}"


class AttachmentKind(models.TextChoices):
    DOCUMENT = "document", "Document"
    IMAGE = "image", "Image"


class Attachment(models.Model):
    """A file or image attached in the composer. Pending (no message) until its uploader sends
    their next message in the conversation, which takes every pending attachment of theirs.
    Images are kept as we re-encoded them (chats.images), never as uploaded; documents are read
    into the conversation's files collection."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="attachments"
    )
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments"
    )
    kind = models.CharField(max_length=10, choices=AttachmentKind.choices)
    name = models.CharField(max_length=255)  # as uploaded (cleaned), for display only
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    size_bytes = models.PositiveBigIntegerField(default=0)
    # Images: our re-encoding (PNG or JPEG) and its thumbnail, under generated names.
    media_type = models.CharField(max_length=40, blank=True)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    stored_name = models.CharField(max_length=80, blank=True)
    thumb_name = models.CharField(max_length=80, blank=True)
    # Documents: what the files collection made of it.
    document = models.ForeignKey(
        "rag.Document", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["conversation", "uploaded_by"],
                condition=models.Q(message__isnull=True),
                name="chats_attachment_pending",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def _thumb_size(self) -> tuple[int, int]:
        from chats.images import THUMB_SIDE

        if not self.width or not self.height:
            return THUMB_SIDE, THUMB_SIDE
        scale = min(1.0, THUMB_SIDE / max(self.width, self.height))
        return max(1, round(self.width * scale)), max(1, round(self.height * scale))

    @property
    def thumb_width(self) -> int:
        return self._thumb_size()[0]

    @property
    def thumb_height(self) -> int:
        return self._thumb_size()[1]


# --- Organisation: per-user pins, archive and folders; read-only share links ----------------------


class Folder(Owned):
    """A folder for conversations. Folders are personal (owned by their user): they organise
    one person's list, and may hold team chats too."""

    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta(Owned.Meta):
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["owner_user", "name"])]

    def __str__(self) -> str:
        return self.name


class ConversationMark(models.Model):
    """One user's organisation of one conversation: pinned, archived, in a folder. Per user, so
    a team chat one member archives stays in the others' lists. No row: not organised."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="marks")
    pinned_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    folder = models.ForeignKey(
        Folder, null=True, blank=True, on_delete=models.SET_NULL, related_name="marks"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "conversation"], name="chats_mark_unique")
        ]
        indexes = [
            models.Index(fields=["user", "folder"]),
            models.Index(
                fields=["user", "archived_at"],
                condition=models.Q(archived_at__isnull=False),
                name="chats_mark_archived",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} → {self.conversation_id}"


class ShareLink(models.Model):
    """A read-only link to a conversation's visible path. The token is the only key (anyone with
    the link can read, no account needed); revoking ends it at once. Costs and the names of the
    credentials (keys) that answered stay hidden unless the owner opts in."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="shares")
    token = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    show_costs = models.BooleanField(default=False)
    show_key_names = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["conversation"],
                condition=models.Q(revoked_at__isnull=True),
                name="chats_share_active",
            )
        ]

    def __str__(self) -> str:
        return f"Share of {self.conversation_id}{' (revoked)' if self.revoked_at else ''}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
