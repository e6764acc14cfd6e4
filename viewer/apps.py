from django.apps import AppConfig


class ViewerConfig(AppConfig):
    name = "viewer"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # The kinds' profiles (readers, specs, figures) are loaded with the app, not inside the first
        # import, page or job that asks for one: a worker's first import no longer pays for them.
        from . import kinds

        kinds.load_builtins()
