from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from viewer.views.account import logout_everywhere

from .api import api

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("logout/everywhere/", logout_everywhere, name="logout-everywhere"),
    # Browsers ask for /favicon.ico on pages without a <link rel=icon> (API docs, exports).
    path("favicon.ico", login_not_required(RedirectView.as_view(url=static("favicon.svg"), permanent=True))),
    path("api/", api.urls),
    path("", include("viewer.urls")),
]
