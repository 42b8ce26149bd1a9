from django.urls import path

from workbench.views import area

app_name = "playground"

urlpatterns = [
    path("", area("playground"), name="index"),
]
