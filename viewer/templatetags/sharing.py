"""Sharing on a run's pages: who shared it with you, the owner's Share link, saved views."""
from django import template

from .. import access, saved_views, shares

register = template.Library()


@register.filter
def owned_by(run, user) -> bool:
    return access.is_owner(user, run)


@register.simple_tag(takes_context=True)
def shared_with_you(context, run):
    """{% shared_with_you run as shared %}: who shared `run` with the user and what they may do."""
    return shares.shared_with(context.get("user"), run)


@register.inclusion_tag("viewer/_saved_views.html", takes_context=True)
def saved_views_of(context, run):
    """{% saved_views_of run %}: the run's saved views, and a form saving this page as one."""
    request = context["request"]
    return {"run": run, "views": saved_views.views_of(run), "user": request.user,
            "url": request.get_full_path(), "csrf_token": context.get("csrf_token")}
