"""`/tokens/`: the user's API tokens. A new token is shown once; only its hash is kept.

Making one is post/redirect/get: the token waits in the session and the page pops it, so a reload
neither posts again (a second token) nor shows the token twice."""
from django import forms
from django.db import OperationalError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from ..db import patient
from ..models import ApiToken


NEW_TOKEN = "new_token"  # the session key holding a token made and not yet shown


class TokenForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, label="Name (what will use it)")


@require_http_methods(["GET", "POST"])
def token_list(request):
    form = TokenForm(request.POST or None)
    busy = False
    if request.method == "POST" and form.is_valid():
        try:  # an import may hold SQLite's write lock for a minute: wait for it, then say so
            _, request.session[NEW_TOKEN] = patient(
                lambda: ApiToken.issue(request.user, name=form.cleaned_data["name"]))
            return HttpResponseRedirect(reverse("tokens"), status=303)
        except OperationalError:
            busy = True
    new_token = request.session.pop(NEW_TOKEN, None) if request.method == "GET" else None
    tokens = ApiToken.objects.filter(user=request.user)
    context = {"tokens": tokens, "form": form, "new_token": new_token, "busy": busy}
    response = render(request, "viewer/tokens.html", context, status=503 if busy else 200)
    response["Cache-Control"] = "private, no-store"  # the page may hold a fresh token
    if busy:
        response["Retry-After"] = "30"
    return response


@require_POST
def revoke(request, token_id):
    get_object_or_404(ApiToken, pk=token_id, user=request.user).delete()
    return HttpResponseRedirect(reverse("tokens"))
