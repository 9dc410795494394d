"""Headers every answer carries. The hub serves JSON to programs, never pages to a browser:
nothing it sends may be sniffed into HTML, framed, cached on the way, or leak the address it
was asked at (URLs carry order numbers and search terms)."""

from __future__ import annotations

from flask import Flask, Response

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    # API answers and webhook acknowledgements are per caller and change with every write.
    "Cache-Control": "no-store",
}


def install(app: Flask) -> None:
    @app.after_request
    def _secure(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response
