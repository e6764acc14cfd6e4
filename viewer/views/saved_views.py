"""Saved views: POST a page's URL under a name (then see it), POST to delete your own (issue 20.4)."""
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from .. import htmx, saved_views
from ..models import SavedView
from ..selectors import get_run_or_404


@require_POST
def save_view(request, run_id):
    run = get_run_or_404(request.user, run_id)
    try:
        view = saved_views.save(owner=request.user, run=run, name=request.POST.get("name", ""),
                                url=request.POST.get("url", ""))
    except saved_views.SavedViewError as error:
        return htmx.bad_request(str(error))
    return HttpResponseRedirect(view.url, status=303)


@require_POST
def delete_view(request, run_id, view_id):
    run = get_run_or_404(request.user, run_id)
    view = get_object_or_404(SavedView, pk=view_id, run=run, owner=request.user)
    saved_views.delete(view, request.user)
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("run", args=[run.pk])
    return HttpResponseRedirect(back, status=303)
