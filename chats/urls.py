from django.urls import path

from workbench.views import area

app_name = "chats"

urlpatterns = [
    path("", area("chat"), name="index"),
]
