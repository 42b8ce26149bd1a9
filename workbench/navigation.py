"""The areas of the app, in the order the navigation shows them. Areas whose feature has not
landed yet render a friendly empty state (workbench.views.area) instead of a 404."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Area:
    key: str
    label: str
    url_name: str
    icon: str  # a name from workbench/templatetags/icons.py
    pitch: str
    coming: tuple[str, ...] = ()


AREAS: tuple[Area, ...] = (
    Area(
        "chat",
        "Chat",
        "chats:index",
        "chat",
        "Streaming conversations with any model, as message trees you can branch, fork and cost.",
        ("Streaming replies with Stop", "Branches and forks", "Cost and speed per message"),
    ),
    Area(
        "playground",
        "Playground",
        "playground:index",
        "playground",
        "Send one prompt to several models side by side and compare speed, quality and cost.",
        ("Side-by-side comparisons", "Arena votes and ratings"),
    ),
    Area(
        "prompts",
        "Prompts",
        "prompts:index",
        "prompts",
        "One prompt library for chat, playground, evaluations and the API.",
        ("Versions and labels", "Variables and rendering"),
    ),
    Area(
        "collections",
        "Collections",
        "rag:index",
        "collections",
        "RAG collections: upload documents, chunk and embed them, and search them from any chat.",
        ("Ingestion with progress", "Hybrid retrieval"),
    ),
    Area(
        "evals",
        "Evaluations",
        "evals:index",
        "evals",
        "Test suites with assertions, runs across models and regression tracking.",
        ("Suites and cases", "Statistics and regressions"),
    ),
    Area(
        "usage",
        "Usage",
        "billing:index",
        "usage",
        "The cost of every call, daily spend by model, team and key, and budgets that hold.",
        ("Spend dashboard", "Budgets and alerts"),
    ),
)

AREAS_BY_KEY = {area.key: area for area in AREAS}
