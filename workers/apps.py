from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"
    label = "launch"  # `workers` is the label of the jobs app, which holds the tables that began here
    verbose_name = "Launching and running jobs"
