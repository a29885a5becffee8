"""The identity of a job for the build-system cache (pure: no Django, no I/O).

A job's identity document holds everything that determines its result and
nothing else: the stack by content (image digest), the code by content
(jobstore manifest hash, zip hash or git commit), the command, the conf with
schema defaults filled, the content hash of every input file, the keys of the
upstream jobs it reads from, and a keyed hash of its secrets. Resources and
timeouts are left out: they change how a job runs, not what it produces.

The key is the SHA-256 of the canonical JSON of the document. Two jobs with
the same key are interchangeable; `differences()` names the fields that keep
two documents apart, for `GET /jobs/<id>/why/`.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json

FORMAT = "acc-identity/1"


def canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_of(document: dict) -> str:
    return hashlib.sha256(canonical(document)).hexdigest()


def secrets_digest(secrets: dict, *, key: bytes) -> str | None:
    """A keyed hash of the secret values: equal secrets match, the values cannot be guessed from it."""
    if not secrets:
        return None
    return hmac.new(key, canonical(secrets), hashlib.sha256).hexdigest()


def fill_defaults(conf: dict, schema: dict | None) -> dict:
    """`conf` with the top-level defaults of a JSON Schema filled in (given values win)."""
    filled = copy.deepcopy(conf)
    for name, prop in ((schema or {}).get("properties") or {}).items():
        if name not in filled and isinstance(prop, dict) and "default" in prop:
            filled[name] = copy.deepcopy(prop["default"])
    return filled


def document(
    *,
    backend: str,
    stack: dict,
    code: dict,
    command: str,
    workdir: str,
    conf: dict,
    inputs: dict,
    upstream: dict,
    secrets: str | None,
) -> dict:
    """Assemble the identity document. Every argument must already be content-based."""
    return {
        "format": FORMAT,
        "backend": backend,
        "stack": stack,
        "code": code,
        "command": command,
        "workdir": workdir,
        "conf": dict(sorted(conf.items())),
        "inputs": inputs,
        "upstream": dict(sorted(upstream.items())),
        "secrets": secrets,
    }


def differences(old: dict, new: dict, *, prefix: str = "") -> list[str]:
    """Dotted paths of the fields whose values differ between two documents."""
    found = []
    for name in sorted(set(old) | set(new)):
        path = f"{prefix}{name}"
        a, b = old.get(name, _MISSING), new.get(name, _MISSING)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict) and name not in _ATOMIC:
            found.extend(differences(a, b, prefix=f"{path}."))
        else:
            found.append(path)
    return found


_MISSING = object()
_ATOMIC = {"secrets"}
