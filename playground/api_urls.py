from django.urls import path

from playground import api, arena_api, runs_api

urlpatterns = [
    path("comparisons/", api.ComparisonListView.as_view(), name="api-comparison-list"),
    path("comparisons/<int:pk>/", api.ComparisonDetailView.as_view(), name="api-comparison-detail"),
    path(
        "comparisons/<int:pk>/collections/",
        api.ComparisonCollectionListView.as_view(),
        name="api-comparison-collections",
    ),
    path(
        "comparisons/<int:pk>/collections/<int:collection_id>/",
        api.ComparisonCollectionDetailView.as_view(),
        name="api-comparison-collection",
    ),
    path("comparisons/<int:pk>/judge/", api.JudgeView.as_view(), name="api-comparison-judge"),
    path(
        "comparisons/<int:pk>/estimate/",
        api.EstimateView.as_view(),
        name="api-comparison-estimate",
    ),
    path("comparisons/<int:pk>/runs/", runs_api.RunListView.as_view(), name="api-comparison-runs"),
    path("runs/<int:pk>/", runs_api.RunDetailView.as_view(), name="api-run-detail"),
    path("runs/<int:pk>/events/", runs_api.RunEventsView.as_view(), name="api-run-events"),
    path("runs/<int:pk>/stop/", runs_api.RunStopView.as_view(), name="api-run-stop"),
    path("answers/<int:pk>/", runs_api.AnswerDetailView.as_view(), name="api-answer-detail"),
    path("answers/<int:pk>/code/", runs_api.AnswerCodeView.as_view(), name="api-answer-code"),
    path("arena/pool/", arena_api.PoolView.as_view(), name="api-arena-pool"),
    path("arena/battles/", arena_api.BattleListView.as_view(), name="api-battle-list"),
    path("arena/battles/<int:pk>/", arena_api.BattleDetailView.as_view(), name="api-battle-detail"),
    path(
        "arena/battles/<int:pk>/vote/", arena_api.BattleVoteView.as_view(), name="api-battle-vote"
    ),
    path("arena/leaderboard/", arena_api.LeaderboardView.as_view(), name="api-leaderboard"),
]
