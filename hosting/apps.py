from django.apps import AppConfig


class HostingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "hosting"
    verbose_name = "Hosting"

    def ready(self):
        # rooms below this one learn about hosted models only through what is registered here
        from hosting import access, pages
        from interactive import services as interactive_services
        from web import launchers

        interactive_services.add_access_rule(access.session_access)
        launchers.register(pages.explorer_launcher)
        launchers.register_origin(pages.job_origin)
