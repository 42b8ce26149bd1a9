from django.urls import path

from workbench.views import area

app_name = "evals"

urlpatterns = [
    path("", area("evals"), name="index"),
]
