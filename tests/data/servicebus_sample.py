"""Microsoft's sample of the bytes the Functions host sends for one Service Bus message.

Origin: `SERVICEBUS_SAMPLE_CONTENT` in `tests/test_servicebus.py` of the sdist
`azurefunctions-extensions-bindings-servicebus==1.0.0b2` (PyPI,
azurefunctions_extensions_bindings_servicebus-1.0.0b2.tar.gz, sha256
374969b8bf4e651164872061f55c759b425294d565189f112e929efe552920ad), copied verbatim; fetch it with
`pip download --no-binary :all: --no-deps azurefunctions-extensions-bindings-servicebus==1.0.0b2`.

What it holds (read off the bytes, AMQP 1.0 encoding): the 16-byte little-endian lock token, then
header (ttl 1209600000 ms = 14 days, delivery-count 1), delivery annotations (x-opt-lock-token),
message annotations (x-opt-enqueued-time, x-opt-sequence-number 12, x-opt-locked-until),
properties (message-id, absolute-expiry-time, creation-time), data b"hello".
"""

from datetime import UTC, datetime, timedelta
from uuid import UUID

SERVICEBUS_SAMPLE_CONTENT = (
    b"_\241S\374f\335OI\202]\356\033|4<\373\000Sp\300\013\005@@pH\031\010\000@R\001\000Sq\301$\002\243\020x-opt-lock-token\230\374S\241_\335fIO\202]\356\033|4<\373\000Sr\301U\006\243\023x-opt-enqueued-time\203\000\000\001\216v\307\333\310\243\025x-opt-sequence-numberU\014\243\022x-opt-locked-until\203\000\000\001\216v\310\3067\000Ss\300?\r\241 f00d2a33551440389d68e299d31adc7c@@@@@@@\203\000\000\001\216\276\340\343\310\203\000\000\001\216v\307\333\310@@@\000Su\240\005hello"  # noqa: E501
)

#: The values the sample carries, as read off its bytes.
LOCK_TOKEN = UUID("fc53a15f-dd66-494f-825d-ee1b7c343cfb")
MESSAGE_ID = "f00d2a33551440389d68e299d31adc7c"
DELIVERY_COUNT = 1
SEQUENCE_NUMBER = 12
ENQUEUED_TIME = datetime(2024, 3, 25, 18, 3, 13, 224000, tzinfo=UTC)
LOCKED_UNTIL = datetime(2024, 3, 25, 18, 4, 13, 239000, tzinfo=UTC)
TIME_TO_LIVE = timedelta(days=14)
BODY = b"hello"
