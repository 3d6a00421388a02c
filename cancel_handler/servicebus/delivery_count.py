"""Keep the delivery count that the Service Bus binding extension 1.0.0b2 drops.

The host sends each message as a 16-byte lock token followed by the whole AMQP message, header
(with delivery-count) first. Extension 1.0.0b2 (`utils.get_decoded_message`) decodes only the
bytes after the `x-opt-lock-token` symbol, so the header is lost and `message.delivery_count` is
None in Azure: a redelivery would look like a first delivery. Microsoft's Node.js extension had
the same code and now decodes from byte 16 (`serviceBusMessageDecoder.ts`, `content.subarray(16)`).

Until the Python extension does the same, `keep_delivery_count()` wraps its decoder: when the
message it decoded has no header, the header is taken from the whole AMQP message after byte 16,
so the message the function receives carries the host's delivery count. Only for the exact
version pinned in requirements.txt; tests/test_delivery_count.py fails once the extension's own
decoder returns the count, and this module is then deleted.
"""

from __future__ import annotations

import logging
from importlib.metadata import version
from typing import Any

#: The extension version whose decoder drops the header (pinned in requirements.txt).
PINNED_EXTENSION_VERSION = "1.0.0b2"
EXTENSION_DISTRIBUTION = "azurefunctions-extensions-bindings-servicebus"
#: The host's content starts with the lock token (.NET Guid bytes); the AMQP message follows.
LOCK_TOKEN_BYTES = 16

logger = logging.getLogger(__name__)


def header_of(content: bytes) -> Any:
    """The AMQP header of the host's content (lock token, then the whole AMQP message), as a
    `uamqp.message.MessageHeader`; None when the message has none or cannot be decoded."""
    import uamqp  # the extension's own AMQP decoder

    try:
        return uamqp.Message.decode_from_bytes(content[LOCK_TOKEN_BYTES:]).header
    except ValueError:
        return None


def keep_delivery_count() -> bool:
    """Make the extension's decoder keep the AMQP header (and with it the delivery count) of the
    messages it decodes. Idempotent; False, and nothing changed, on any other extension
    version than the pinned one."""
    from azurefunctions.extensions.bindings.servicebus import (
        serviceBusReceivedMessage as extension,
    )

    installed = version(EXTENSION_DISTRIBUTION)
    if installed != PINNED_EXTENSION_VERSION:
        logger.warning(
            "%s %s is not %s: the delivery-count workaround is not applied",
            EXTENSION_DISTRIBUTION,
            installed,
            PINNED_EXTENSION_VERSION,
        )
        return False
    decode = extension.get_decoded_message
    if getattr(decode, "keeps_header", False):
        return True

    def decode_keeping_header(content: bytes) -> Any:
        message = decode(content)
        if message is not None and message.header is None:
            message.header = header_of(content)
        return message

    decode_keeping_header.keeps_header = True  # type: ignore[attr-defined]
    extension.get_decoded_message = decode_keeping_header
    return True
