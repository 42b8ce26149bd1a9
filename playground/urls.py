from django.urls import path, re_path

from playground import arena_views, prompt_views, run_views, views

app_name = "playground"

urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.comparison_new, name="new"),
    path("from-chat/", views.from_chat, name="from_chat"),
    path("from-prompt/", prompt_views.from_prompt, name="from_prompt"),
    path("<int:pk>/", views.comparison_detail, name="detail"),
    path("<int:pk>/save/", views.comparison_save, name="save"),
    path("<int:pk>/context/", views.comparison_context, name="context"),
    path("<int:pk>/prompt/", prompt_views.prompt_apply, name="prompt_apply"),
    path("<int:pk>/slots/add/", views.slot_add, name="slot_add"),
    path("<int:pk>/slots/<int:slot_pk>/duplicate/", views.slot_duplicate, name="slot_duplicate"),
    path("<int:pk>/slots/<int:slot_pk>/remove/", views.slot_remove, name="slot_remove"),
    path("<int:pk>/slots/<int:slot_pk>/move/", views.slot_move, name="slot_move"),
    path("<int:pk>/clone/", views.comparison_clone, name="clone"),
    path("<int:pk>/delete/", views.comparison_delete, name="delete"),
    re_path(
        r"^runs/(?P<pk>[0-9]+)/export\.(?P<fmt>json|csv|md)$",
        run_views.run_export,
        name="run_export",
    ),
    path("runs/<int:pk>/diff/", run_views.run_diff, name="run_diff"),
    path("runs/<int:pk>/winner/", run_views.run_winner, name="run_winner"),
    path("runs/<int:pk>/continue/", run_views.run_continue, name="run_continue"),
    path("answers/<int:pk>/rate/", run_views.answer_rate, name="answer_rate"),
    path("answers/<int:pk>/code/", run_views.answer_code, name="answer_code"),
    path("answers/<int:pk>/continue/", run_views.answer_continue, name="answer_continue"),
    path("arena/", arena_views.arena_index, name="arena"),
    path("arena/pool/", arena_views.arena_pool, name="arena_pool"),
    path("arena/leaderboard/", arena_views.leaderboard, name="leaderboard"),
    path("arena/<int:pk>/", arena_views.battle_detail, name="battle"),
    path("arena/<int:pk>/vote/", arena_views.battle_vote, name="battle_vote"),
]
