"""`/tokens/`: the user's API tokens. A new token is shown once; only its hash is kept."""
from django import forms
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from ..models import ApiToken


class TokenForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, label="Name (what will use it)")


@require_http_methods(["GET", "POST"])
def token_list(request):
    form = TokenForm(request.POST or None)
    new_token = None
    if request.method == "POST" and form.is_valid():
        _, new_token = ApiToken.issue(request.user, name=form.cleaned_data["name"])
        form = TokenForm()
    tokens = ApiToken.objects.filter(user=request.user)
    response = render(request, "viewer/tokens.html", {"tokens": tokens, "form": form, "new_token": new_token})
    response["Cache-Control"] = "private, no-store"  # the page may hold a fresh token
    return response


@require_POST
def revoke(request, token_id):
    get_object_or_404(ApiToken, pk=token_id, user=request.user).delete()
    return HttpResponseRedirect(reverse("tokens"))
