from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    # The records began in the `workers` app: its label keeps their tables, content types and migration history.
    label = "workers"
    verbose_name = "Jobs"
