from django.apps import AppConfig


class JobflowsConfig(AppConfig):
    name = "jobflows"
