"""Checks a reply message against the published reply schema; every test that reads a reply
goes through :func:`reply_event`, so every reply the tests produce is validated."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

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
    return event
