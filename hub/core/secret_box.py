"""Secrets that merchants enter through the API (a channel's shared secret, say) are stored
encrypted with a key derived from the hub's secret key; config files use ``{"$env": NAME}``."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from hub.core.errors import Invalid

ENCRYPTED = "$enc"
ENV = "$env"


class SecretBox:
    def __init__(self, secret_key: str) -> None:
        key = hashlib.sha256(b"orderhub-settings:" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, settings: Mapping[str, Any], secret_names: Iterable[str]) -> dict[str, Any]:
        """Encrypt the named secrets; ``{"$env": NAME}`` references are kept as they are."""
        sealed = dict(settings)
        for name in secret_names:
            value = sealed.get(name)
            if isinstance(value, str):
                sealed[name] = {ENCRYPTED: self._fernet.encrypt(value.encode()).decode()}
        return sealed

    def open(
        self,
        settings: Mapping[str, Any],
        env: Mapping[str, str] | None = None,
        *,
        references: bool = True,
    ) -> dict:
        """Settings as the plugin needs them: decrypted and with references resolved.

        ``references=False`` for settings a tenant sent through the API: a reference there is
        refused rather than read (the API refuses them on the way in; this also covers rows
        stored before it did), and the answer never says whether the variable is set."""
        env = os.environ if env is None else env
        opened = {}
        for name, value in settings.items():
            if isinstance(value, dict) and set(value) == {ENCRYPTED}:
                try:
                    value = self._fernet.decrypt(value[ENCRYPTED].encode()).decode()
                except InvalidToken:
                    raise Invalid(
                        f"setting {name!r} was encrypted with another secret key"
                    ) from None
            elif isinstance(value, dict) and set(value) == {ENV}:
                if not references:
                    raise Invalid(
                        f"setting {name!r}: environment references are read only for settings"
                        " from the operator's config files"
                    )
                if value[ENV] not in env:
                    raise Invalid(f"setting {name!r}: environment variable {value[ENV]} is not set")
                value = env[value[ENV]]
            opened[name] = value
        return opened


def redact(settings: Mapping[str, Any], secret_names: Iterable[str]) -> dict[str, Any]:
    """What the API may show: references stay visible, stored secrets never do."""
    shown = dict(settings)
    for name in secret_names:
        if name in shown and not (isinstance(shown[name], dict) and ENV in shown[name]):
            shown[name] = "********"
    return shown
