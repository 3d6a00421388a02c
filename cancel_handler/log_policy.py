"""What the function's libraries may log. The Python worker forwards every record at or above the
root logger's level (INFO, or DEBUG with PYTHON_ENABLE_DEBUG_LOGGING) to the host and on to
Application Insights, so libraries that put personal data in their records are held at WARNING:
httpx logs every request URL at INFO, and the Graph URL holds the organizer's UPN.
"""

from __future__ import annotations

import logging

#: Loggers held at WARNING or above: httpx (request URLs at INFO), httpcore (connection and
#: header traces at DEBUG), azure-core's HTTP logging policy and azure-identity (identity
#: endpoint requests), azure-servicebus and its AMQP stack (connection, link and frame traces).
QUIETED_LOGGERS = ("httpx", "httpcore", "azure.core", "azure.identity", "azure.servicebus")


def quiet_library_loggers() -> None:
    """Raise each logger in :data:`QUIETED_LOGGERS` to WARNING unless it is set stricter; levels
    set on loggers outlive the worker's root-level changes."""
    for name in QUIETED_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
