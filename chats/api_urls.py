from django.urls import path

from chats import api

urlpatterns = [
    path("conversations/", api.ConversationListView.as_view(), name="api-conversation-list"),
    path(
        "conversations/<int:pk>/",
        api.ConversationDetailView.as_view(),
        name="api-conversation-detail",
    ),
    path(
        "conversations/<int:pk>/messages/", api.MessageListView.as_view(), name="api-message-list"
    ),
    path(
        "conversations/<int:pk>/messages/<int:message_id>/stop/",
        api.StopView.as_view(),
        name="api-message-stop",
    ),
    path("conversations/<int:pk>/fork/", api.ForkView.as_view(), name="api-conversation-fork"),
    path(
        "conversations/<int:pk>/collections/",
        api.ConversationCollectionListView.as_view(),
        name="api-conversation-collections",
    ),
    path(
        "conversations/<int:pk>/attachments/",
        api.AttachmentListView.as_view(),
        name="api-attachment-list",
    ),
    path(
        "conversations/<int:pk>/attachments/<int:attachment_id>/",
        api.AttachmentDetailView.as_view(),
        name="api-attachment-detail",
    ),
    path(
        "conversations/<int:pk>/collections/<int:collection_id>/",
        api.ConversationCollectionDetailView.as_view(),
        name="api-conversation-collection",
    ),
]
