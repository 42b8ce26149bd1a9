from django.urls import path

from workbench.views import area

app_name = "prompts"

urlpatterns = [
    path("", area("prompts"), name="index"),
]
