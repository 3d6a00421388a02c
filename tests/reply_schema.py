"""Checks a reply message against the published reply schema and reads it with azure-core's
`CloudEvent` (Microsoft's reading of CloudEvents 1.0 JSON); every test that reads a reply goes
through :func:`reply_event`, so every reply the tests produce is validated both ways."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from azure.core.messaging import CloudEvent
from jsonschema import Draft202012Validator, FormatChecker

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "cancel_handler" / "schema"
SCHEMA_PATH = SCHEMA_DIR / "cancel-outcome.v1.schema.json"


@cache
def validator() -> Draft202012Validator:
    """A validator of the published reply schema (formats checked too)."""
    schema = json.loads(SCHEMA_PATH.read_text("utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def reply_event(message: Any) -> dict[str, Any]:
    """The CloudEvent in a reply message's body, after checking it against the schema."""
    body = message.body
    data = body if isinstance(body, bytes) else b"".join(body)
    event = json.loads(data.decode("utf-8"))
    validator().validate(event)
    parsed = CloudEvent.from_dict(event)
    assert (parsed.specversion, parsed.id, parsed.source, parsed.type) == (
        "1.0", event["id"], event["source"], event["type"])
    assert not parsed.extensions, "no attributes beyond CloudEvents' own"
    assert parsed.time is not None and parsed.time.utcoffset() is not None
    assert parsed.data == event["data"] and parsed.subject == event["subject"]
    return event
