"""The ``log`` notifier: writes each message to the hub's log (logger ``orderhub.notify``).

Handy as a first notifier and in development; it uses the same hooks as any third party.
"""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar

from hub import hookimpl
from hub.core.adapters import Message, Notifier

logger = logging.getLogger("orderhub.notify")


class LogNotifier(Notifier):
    name = "log"
    title = "Write notifications to the hub's log"
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"level": {"enum": ["DEBUG", "INFO", "WARNING", "ERROR"]}},
        "additionalProperties": False,
    }

    def send(self, message: Message) -> None:
        level = logging.getLevelName(self.settings.get("level", "INFO"))
        logger.log(
            level,
            "[%s] %s %s",
            message.tenant,
            message.subject,
            json.dumps(message.data, sort_keys=True, default=str),
        )


@hookimpl
def register_notifiers() -> list[type[Notifier]]:
    return [LogNotifier]
