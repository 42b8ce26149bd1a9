from django.urls import path

from workbench.views import area

app_name = "billing"

urlpatterns = [
    path("", area("usage"), name="index"),
]
