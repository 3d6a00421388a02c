"""Service Bus's own rules for queue and topic names and session ids, so that a name or id it
would refuse is refused before anything is sent.

Sources: Azure's naming rules, Microsoft.ServiceBus `namespaces / queues` and `namespaces /
topics` (https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules
#microsoftservicebus): 1-260 characters; letters, digits, periods, hyphens, underscores and
slashes; start and end with a letter or digit. Service Bus quotas
(https://learn.microsoft.com/azure/service-bus-messaging/service-bus-quotas): a message session
id has at most 128 characters.
"""

from __future__ import annotations

import re

#: Longest queue or topic name (entity path) Service Bus accepts.
MAX_ENTITY_NAME_LENGTH = 260
#: Longest SessionId (and ReplyToSessionId) Service Bus accepts.
MAX_SESSION_ID_LENGTH = 128

#: A Service Bus queue or topic name.
ENTITY_NAME = re.compile(
    rf"[A-Za-z0-9](?:[A-Za-z0-9._/-]{{0,{MAX_ENTITY_NAME_LENGTH - 2}}}[A-Za-z0-9])?"
)
_ALLOWED = re.compile(r"[A-Za-z0-9._/-]")
#: Characters named in a problem; the rest are only counted out.
_SHOWN_CHARACTERS = 5


def entity_name_problem(name: str) -> str | None:
    """Why `name` cannot be a Service Bus queue or topic name, or None when it can. The text
    never repeats the name (it may be a secret given by mistake), only characters it holds."""
    if ENTITY_NAME.fullmatch(name):
        return None
    if not name:
        return "it is empty"
    if len(name) > MAX_ENTITY_NAME_LENGTH:
        return f"it is {len(name)} characters long; the limit is {MAX_ENTITY_NAME_LENGTH}"
    odd = list(dict.fromkeys(c for c in name if not _ALLOWED.fullmatch(c)))
    if odd:
        shown = ", ".join(repr(c) for c in odd[:_SHOWN_CHARACTERS])
        more = " and others" if len(odd) > _SHOWN_CHARACTERS else ""
        return (
            f"it contains {shown}{more}; only letters, digits, '.', '-', '_' and '/' are "
            "allowed"
        )
    return "it must start and end with a letter or digit"


def session_id_problem(session_id: str) -> str | None:
    """Why `session_id` cannot be a Service Bus session id, or None when it can."""
    if len(session_id) > MAX_SESSION_ID_LENGTH:
        return f"it is {len(session_id)} characters long; the limit is {MAX_SESSION_ID_LENGTH}"
    return None
