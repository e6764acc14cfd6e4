"""`/runs/<id>/share/`: the owner shares the run with users or groups (read-only, or to annotate) and
makes public links; `/s/<token>/` opens a public link for someone without an account (issue 20.3).

Every change is a POST to its own URL, then a 303 back to the share page (post/redirect/get)."""
from django import forms
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import access, shares
from ..models import ShareLink


class ShareForm(forms.Form):
    user = forms.CharField(max_length=150, required=False, label="User name")
    group = forms.CharField(max_length=150, required=False, label="or group name")
    can_annotate = forms.BooleanField(required=False, label="Can annotate")


class LinkForm(forms.Form):
    scope = forms.ChoiceField(choices=ShareLink.Scope.choices, initial=ShareLink.Scope.RUN, label="Opens")
    days = forms.IntegerField(min_value=1, max_value=shares.MAX_LINK_DAYS, initial=shares.DEFAULT_LINK_DAYS,
                              label=f"Expires in (days, at most {shares.MAX_LINK_DAYS})")


def _back(run):
    return HttpResponseRedirect(reverse("run-share", args=[run.pk]), status=303)


def _page(request, run, *, share_form=None, link_form=None, status=200):
    links = [{**row, "url": request.build_absolute_uri(row["path"])} for row in shares.links_of_run(run)]
    context = {"run": run, "shares": shares.shares_of_run(run), "links": links,
               "share_form": share_form or ShareForm(), "link_form": link_form or LinkForm()}
    response = render(request, "viewer/share.html", context, status=status)
    response["Cache-Control"] = "private, no-store"  # it lists live links
    return response


@require_http_methods(["GET", "POST"])
def share_page(request, run_id):
    run = access.owned_run_or_404(request.user, run_id)
    if request.method == "GET":
        return _page(request, run)
    form = ShareForm(request.POST)
    if form.is_valid():
        try:
            shares.share(run, by=request.user, username=form.cleaned_data["user"],
                         group=form.cleaned_data["group"], can_annotate=form.cleaned_data["can_annotate"])
            return _back(run)
        except shares.ShareError as error:
            form.add_error(None, str(error))
    return _page(request, run, share_form=form, status=400)


@require_POST
def unshare(request, run_id):
    run = access.owned_run_or_404(request.user, run_id)
    shares.unshare(run, username=request.POST.get("user", ""), group=request.POST.get("group", ""))
    return _back(run)


@require_POST
def create_link(request, run_id):
    run = access.owned_run_or_404(request.user, run_id)
    form = LinkForm(request.POST)
    if not form.is_valid():
        return _page(request, run, link_form=form, status=400)
    shares.create_link(run, by=request.user, scope=form.cleaned_data["scope"], days=form.cleaned_data["days"])
    return _back(run)


@require_POST
def revoke_link(request, run_id, link_id):
    run = access.owned_run_or_404(request.user, run_id)
    shares.revoke_link(get_object_or_404(ShareLink, pk=link_id, run=run))
    return _back(run)


@login_not_required
@require_GET
def open_link(request, token):
    """A public link: a live one is remembered in the session and opens its run page or audit trail."""
    try:
        link = shares.open_link(token)
    except ShareLink.DoesNotExist:
        return gone_page(request, None)
    except shares.LinkGone as gone:
        return gone_page(request, gone.link)
    if request.user.is_authenticated:
        if access.role(request.user, link.run) is not None:
            return HttpResponseRedirect(shares.target(link))
        context = {"state": "account", "link": link}  # a link is for someone without an account
        return render(request, "viewer/share_link.html", context, status=403)
    request.session[shares.GRANTS] = shares.granted(request.session.get(shares.GRANTS) or [], link)
    return HttpResponseRedirect(shares.target(link))


def gone_page(request, link):
    """A link that opens nothing: unknown (404), or expired or revoked (410)."""
    state = shares.link_state(link) if link else "unknown"
    status = 404 if link is None else 410
    return render(request, "viewer/share_link.html", {"state": state, "link": link}, status=status)
