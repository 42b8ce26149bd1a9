"""Gateway routes: OpenAI's paths under /v1/, Anthropic's under /anthropic/v1/."""

from django.urls import path

from providers.gateway import views

app_name = "gateway"

openai_patterns = [
    path("chat/completions", views.chat_completions, name="chat-completions"),
    path("models", views.models, name="models"),
    path("embeddings", views.embeddings, name="embeddings"),
]
anthropic_patterns = [
    path("messages", views.anthropic_messages, name="anthropic-messages"),
]
