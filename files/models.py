"""Project files and jobstore objects live in django-storages; the only table is a digest cache."""

from django.db import models


class FileDigest(models.Model):
    """SHA-256 of a stored file, valid while its size and modification time stay the same.

    The build-system cache hashes every input of a dispatch; this keeps that to
    a stat per file instead of a full read.
    """

    name = models.CharField(max_length=1100, unique=True, help_text="Storage name of the file.")
    size = models.BigIntegerField()
    modified = models.FloatField(help_text="Modification time (epoch seconds) when hashed.")
    sha256 = models.CharField(max_length=64)
