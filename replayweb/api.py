"""The JSON API: one NinjaAPI; the endpoints live in viewer/api.py as a Router."""
from ninja import NinjaAPI

api = NinjaAPI(title="ReplayWeb API", version="1", urls_namespace="api")

try:
    from viewer.api import router
except ImportError:  # the router arrives with the API issue
    router = None
if router is not None:
    api.add_router("/", router)
