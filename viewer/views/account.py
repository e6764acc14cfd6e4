"""`/logout/everywhere/`: end every session of the user, on every browser, then this one."""
from django.contrib.auth import logout
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from replayweb.sessions import end_sessions_of


@require_POST
def logout_everywhere(request):
    user = request.user
    logout(request)  # this session first (flushes it), then the others of the same user
    end_sessions_of(user)
    return redirect("login")
