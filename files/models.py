"""Project files and jobstore objects live in django-storages; the tables are a digest cache and the Xet CAS."""

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
    xet_hash = models.CharField(
        max_length=64, blank=True, default="", help_text="Xet file hash of the same bytes, once the file has one."
    )


# --- the Xet CAS (accli copy): files/xet_cas.py writes these --------------------------------------------------


class Xorb(models.Model):
    """A verified xorb, stored once for all projects at `xet/xorbs/<hash>` (its chunks, without the footer).

    `index` holds one 40-byte record per chunk: the chunk's hash (32 bytes,
    raw), the offset of its header in the stored xorb and its unpacked length
    (u32 little-endian each). Who may use it is `XorbAccess`.
    """

    hash = models.CharField(max_length=64, unique=True, help_text="The xorb hash, as the protocol writes it.")
    num_chunks = models.PositiveIntegerField()
    stored_bytes = models.BigIntegerField(help_text="Length of the stored chunk section.")
    unpacked_bytes = models.BigIntegerField(help_text="Sum of the chunks' unpacked lengths.")
    index = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.hash


class XorbAccess(models.Model):
    """A project may reference and read a xorb: it uploaded its bytes, or the xorb was made from its own files."""

    xorb = models.ForeignKey(Xorb, on_delete=models.CASCADE, related_name="access")
    project = models.ForeignKey("routines.Project", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["xorb", "project"], name="xorb_access_once")]


class XetChunk(models.Model):
    """Where a chunk that global deduplication may ask for lies: the protocol's eligible chunks only."""

    hash = models.CharField(max_length=64, db_index=True)
    xorb = models.ForeignKey(Xorb, on_delete=models.CASCADE, related_name="+")
    chunk_index = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["hash", "xorb"], name="xet_chunk_once")]


class XetFile(models.Model):
    """How to rebuild one file of a project from xorbs (a shard's file info, checked), by its Xet hash.

    `terms` holds one 48-byte record per term: the xorb hash (32 bytes, raw),
    the unpacked length, the first and the end chunk index (u32 little-endian each,
    then 4 spare bytes).
    """

    project = models.ForeignKey("routines.Project", on_delete=models.CASCADE, related_name="+")
    hash = models.CharField(max_length=64)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, blank=True, default="")
    terms = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "hash"], name="xet_file_once_per_project")]
