"""Serving a file the hub keeps (hub.core.attachments): a ticket's attachment, a review's
photo. One place for how: read whole (at most the upload limit), so no open file is left to
a client that never reads the answer to its end, and sent so that no browser runs it — the
type the hub found in its content, ``nosniff`` and a sandboxing policy."""

from __future__ import annotations

import io
from pathlib import Path

from flask import Response, send_file

from hub.core import attachments
from hub.core.errors import NotFound


def stored_file(
    data_dir: Path,
    tenant_id: int,
    sha256: str,
    content_type: str,
    filename: str,
    *,
    inline: bool,
    missing: str,
) -> Response:
    """The file as a download, or ``inline`` (a photo shown in a page). ``missing`` is the
    404's message when the hub's storage lost it."""
    try:
        path = attachments.path_of(data_dir, tenant_id, sha256)
    except FileNotFoundError:
        raise NotFound(missing) from None
    response = send_file(
        io.BytesIO(path.read_bytes()),
        mimetype=content_type,
        as_attachment=not inline,
        download_name=filename,
        max_age=0,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
