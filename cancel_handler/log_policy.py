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


#: The start of the warning azure-functions logs on the root logger each time the worker indexes
#: an app without HTTP functions (`FunctionRegister.get_functions`): true of every cold start of
#: this app, so it says nothing an operator could act on.
AUTH_LEVEL_NOTICE = "Auth level is not applied to non http function app"


def quiet_library_loggers() -> None:
    """Raise each logger in :data:`QUIETED_LOGGERS` to WARNING unless it is set stricter (levels
    set on loggers outlive the worker's root-level changes), and drop azure-functions' auth
    level notice from the root logger."""
    for name in QUIETED_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
    root = logging.getLogger()
    if _drop_auth_level_notice not in root.filters:
        root.addFilter(_drop_auth_level_notice)


def _drop_auth_level_notice(record: logging.LogRecord) -> bool:
    """False (drop) only for azure-functions' auth level notice."""
    return not (isinstance(record.msg, str) and record.msg.startswith(AUTH_LEVEL_NOTICE))
