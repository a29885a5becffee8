# Project files and jobstore objects live in django-storages; no tables needed.
