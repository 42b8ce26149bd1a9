from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from workbench.navigation import AREAS, AREAS_BY_KEY


@login_required
def home(request):
    return render(request, "home.html", {"areas": AREAS, "nav_active": "home"})


def area(key: str):
    """A view for an area whose feature has not landed yet: a friendly empty state, not a 404."""

    @login_required
    def view(request):
        item = AREAS_BY_KEY[key]
        return render(request, "area_empty.html", {"area": item, "nav_active": key})

    view.__name__ = f"{key}_index"
    return view


def bad_request(request, exception=None):
    # Only our own BadRequest messages are shown; Django's (a SuspiciousOperation's) are not.
    from django.core.exceptions import BadRequest

    reason = str(exception) if type(exception) is BadRequest else ""
    return render(request, "400.html", {"reason": reason}, status=400)


def page_not_found(request, exception=None):
    if request.path.startswith("/api/"):  # API clients get the API's error shape, even here
        from django.http import JsonResponse

        from workbench.api import error_body

        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return render(request, "404.html", status=404)


def permission_denied(request, exception=None):
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


def server_error(request):
    # No context processors: the database may be the thing that is down.
    from django.http import HttpResponseServerError
    from django.template import loader

    return HttpResponseServerError(loader.get_template("500.html").render())
