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


def page_not_found(request, exception=None):
    return render(request, "404.html", status=404)


def permission_denied(request, exception=None):
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


def server_error(request):
    # No context processors: the database may be the thing that is down.
    from django.http import HttpResponseServerError
    from django.template import loader

    return HttpResponseServerError(loader.get_template("500.html").render())
