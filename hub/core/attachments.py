"""Files attached to tickets (photos of a damaged parcel, a receipt): kept by the hub under its
data directory, never in a database row, named by their SHA-256 within the tenant's own folder.

What a file is comes from its first bytes (the ``filetype`` library's signatures), never from
the name or the type its sender claims, and only a few harmless kinds are taken: a file that
says it is a photo but is HTML is refused, so nothing a customer sends is ever served back as
a page a browser would run. Plain text is taken when it is UTF-8 without NUL characters.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

import filetype

from hub.core.db import utcnow
from hub.core.errors import Invalid

ALLOWED = ("image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf", "text/plain")
MAX_PER_TICKET = 50
NAME_LENGTH = 200


def kind_of(data: bytes) -> str:
    """The file's type by its content; Invalid when it is not one the hub keeps."""
    guessed = filetype.guess(data)
    if guessed is not None:
        if guessed.mime in ALLOWED:
            return str(guessed.mime)
        found = f"is {guessed.mime}"
    elif _plain_text(data):
        return "text/plain"
    else:
        found = "is not a file type the hub recognises"
    problem = f"{found}; allowed: JPEG, PNG, GIF, WebP, PDF and UTF-8 text"
    raise Invalid(f"the file {problem}", [{"field": "file", "problem": problem}])


def _plain_text(data: bytes) -> bool:
    if not data or b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def clean_name(name: str) -> str:
    """The name to show and offer on download: its last path part, without control
    characters, at most NAME_LENGTH characters; "attachment" when nothing is left."""
    base = re.split(r"[\\/]", name)[-1]
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip()
    return base[:NAME_LENGTH] or "attachment"


def store(data_dir: Path, tenant_id: int, data: bytes) -> str:
    """Write the bytes (once: the same file twice is one copy) and return their SHA-256. The
    write goes to a temporary file first, so a crash never leaves half a file under the name
    a row points to."""
    digest = hashlib.sha256(data).hexdigest()
    path = _path(data_dir, tenant_id, digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp.name, path)
    return digest


def kept(
    data_dir: Path, tenant_id: int, filename: str, data: bytes, content_type: str, actor: str
) -> dict[str, Any]:
    """Store the bytes (their type already checked) and return what every row of a kept
    file holds — a ticket's attachment and a review's photo alike."""
    return {
        "tenant_id": tenant_id,
        "filename": clean_name(filename),
        "content_type": content_type,
        "size": len(data),
        "sha256": store(data_dir, tenant_id, data),
        "uploaded_by": actor,
        "created_at": utcnow(),
    }


def path_of(data_dir: Path, tenant_id: int, digest: str) -> Path:
    path = _path(data_dir, tenant_id, digest)
    if not path.is_file():
        raise FileNotFoundError(digest)
    return path


def _path(data_dir: Path, tenant_id: int, digest: str) -> Path:
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValueError("not a SHA-256")
    return data_dir / "attachments" / str(int(tenant_id)) / digest[:2] / digest
