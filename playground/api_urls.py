from django.urls import path

from playground import api

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
    path("comparisons/<int:pk>/runs/", api.RunListView.as_view(), name="api-comparison-runs"),
    path("runs/<int:pk>/", api.RunDetailView.as_view(), name="api-run-detail"),
    path("runs/<int:pk>/events/", api.RunEventsView.as_view(), name="api-run-events"),
    path("runs/<int:pk>/stop/", api.RunStopView.as_view(), name="api-run-stop"),
    path("answers/<int:pk>/", api.AnswerDetailView.as_view(), name="api-answer-detail"),
    path("answers/<int:pk>/code/", api.AnswerCodeView.as_view(), name="api-answer-code"),
    path("arena/pool/", api.PoolView.as_view(), name="api-arena-pool"),
    path("arena/battles/", api.BattleListView.as_view(), name="api-battle-list"),
    path("arena/battles/<int:pk>/", api.BattleDetailView.as_view(), name="api-battle-detail"),
    path("arena/battles/<int:pk>/vote/", api.BattleVoteView.as_view(), name="api-battle-vote"),
    path("arena/leaderboard/", api.LeaderboardView.as_view(), name="api-leaderboard"),
]
