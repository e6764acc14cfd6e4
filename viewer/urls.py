from django.urls import path

from .views import runs

urlpatterns = [
    path("", runs.run_list, name="runs"),
    path("upload/", runs.upload, name="upload"),
    path("runs/<int:run_id>/delete/", runs.delete, name="run-delete"),
]
