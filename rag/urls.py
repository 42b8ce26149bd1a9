from django.urls import path

from workbench.views import area

app_name = "rag"

urlpatterns = [
    path("", area("collections"), name="index"),
]
