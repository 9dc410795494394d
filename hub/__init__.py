"""OrderHub: a plugin-based order-processing hub. Plugin authors need only ``hookimpl``."""

from hub.hookspecs import hookimpl

__all__ = ["create_app", "hookimpl"]


def create_app(*args, **kwargs):  # type: ignore[no-untyped-def]
    """Build the Flask application (imported lazily so plugins can import ``hookimpl`` cheaply)."""
    from hub.app import create_app as factory

    return factory(*args, **kwargs)
