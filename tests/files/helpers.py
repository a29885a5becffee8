"""Build jobstore objects the way accli 2.0.14 does (sha1 of bytes; manifest of path/hash/mode)."""

import hashlib
import io
import json
import zipfile

from files import jobstore


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def put_blob(project, data: bytes) -> str:
    digest = sha1(data)
    jobstore.put(project=project, filename=f"cas_{digest}.blob", stream=io.BytesIO(data))
    return digest


def manifest_bytes(files: list[dict]) -> bytes:
    return json.dumps({"type": "cas_manifest", "files": files}).encode()


def put_folder(project, files: dict[str, tuple[bytes, int]]) -> str:
    """Upload blobs and a manifest for {path: (content, st_mode)}; return the manifest's sha1."""
    entries = [{"path": path, "hash": put_blob(project, data), "mode": mode} for path, (data, mode) in files.items()]
    raw = manifest_bytes(entries)
    jobstore.put(project=project, filename=f"manifest_{sha1(raw)}.json", stream=io.BytesIO(raw))
    return sha1(raw)


def zip_bytes(members: dict[str, bytes], mode: int = 0o600) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            archive.writestr(info, data)
    return buf.getvalue()
