"""Keep the delivery count that the Service Bus binding extension 1.0.0b2 drops.

The host sends each message as a 16-byte lock token followed by the whole AMQP message, header
(with delivery-count) first. Extension 1.0.0b2 (`utils.get_decoded_message`) decodes only the
bytes after the `x-opt-lock-token` symbol, so the header is lost and `message.delivery_count` is
None in Azure: a redelivery would look like a first delivery. Microsoft's Node.js extension had
the same code and now decodes from byte 16 (`serviceBusMessageDecoder.ts`, `content.subarray(16)`).

Until the Python extension does the same, `keep_delivery_count()` replaces its decoder with one
that does: the whole AMQP message after byte 16 is decoded with uamqp (the extension's own AMQP
library), and the lock token is set from the first 16 bytes exactly as the extension sets it. So
the message the function receives is the extension's, plus the header it dropped; when those
bytes cannot be decoded, the extension's own decoder runs (the count is then unknown). Only for
the exact version pinned in requirements.txt; tests/test_delivery_count.py fails once the
extension's own decoder returns the count, and this module is then deleted.
"""

from __future__ import annotations

import logging
import uuid
from importlib.metadata import version
from typing import Any

#: The extension version whose decoder drops the header (pinned in requirements.txt).
PINNED_EXTENSION_VERSION = "1.0.0b2"
EXTENSION_DISTRIBUTION = "azurefunctions-extensions-bindings-servicebus"
#: The host's content starts with the lock token (.NET Guid bytes); the AMQP message follows.
LOCK_TOKEN_BYTES = 16
LOCK_TOKEN_ANNOTATION = b"x-opt-lock-token"

logger = logging.getLogger(__name__)


def keep_delivery_count() -> bool:
    """Make the binding extension decode the whole AMQP message, header (and with it the
    delivery count) included. Idempotent; False, and nothing changed, on any other extension
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
    extension_decode = extension.get_decoded_message
    if getattr(extension_decode, "keeps_header", False):
        return True

    def decode_from_byte_16(content: bytes) -> Any:
        message = _whole_message(content)
        return extension_decode(content) if message is None else message

    decode_from_byte_16.keeps_header = True  # type: ignore[attr-defined]
    extension.get_decoded_message = decode_from_byte_16
    return True


def _whole_message(content: bytes) -> Any:
    """The uamqp message after the lock token, with the lock token set as the extension sets it;
    None when the content is empty or not an AMQP message."""
    import uamqp

    if not content or len(content) <= LOCK_TOKEN_BYTES:
        return None
    try:
        message = uamqp.Message.decode_from_bytes(content[LOCK_TOKEN_BYTES:])
    except Exception:  # whatever uamqp raises, the extension's own decoder then decides
        logger.warning("message after the lock token is not AMQP; its delivery count is unknown")
        return None
    lock_token = uuid.UUID(bytes_le=bytes(content[:LOCK_TOKEN_BYTES]))
    message.delivery_annotations = {LOCK_TOKEN_ANNOTATION: lock_token}
    return message
