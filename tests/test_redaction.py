"""Credentials never leave the process: bearer tokens and raw JWTs are cut out of any text that
reaches a log line or a dead-letter description; control characters never reach a log line or
the terminal."""

from __future__ import annotations

import pytest

from cancel_handler.cli.output import safe
from cancel_handler.core.decision import GraphResponse, decide
from cancel_handler.core.redaction import (
    first_line,
    looks_like_connection_string,
    printable,
    redact,
)
from cancel_handler.servicebus.settle import log_safe

# A JWT as Entra issues them (header.payload.signature, base64url); values are made up.
JWT = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9"
    ".eyJhdWQiOiJodHRwczovL2dyYXBoLm1pY3Jvc29mdC5jb20iLCJvaWQiOiIwMDAifQ"
    ".c2lnbmF0dXJlLXdpdGgtZGFzaGVzXy1hbmQtdW5kZXJzY29yZXM"
)


def test_a_raw_jwt_is_redacted_without_a_bearer_prefix() -> None:
    """A JWT echoed on its own (no 'Bearer') is replaced, and the text around it is kept."""
    assert redact(f"token {JWT} was rejected") == "token <redacted> was rejected"


def test_an_unsigned_jwt_is_redacted() -> None:
    """A JWT with an empty signature part (alg none) is still a credential."""
    assert redact("x eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0. y") == "x <redacted> y"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_a_bearer_credential_is_redacted_whole(scheme: str) -> None:
    """'Bearer <token>' goes entirely, whatever the case and even with '-', '.', '_', '~' inside."""
    text = f"Authorization: {scheme} opaque-token.with_parts~and/slashes+plus="
    assert redact(text) == "Authorization: <redacted>"


@pytest.mark.parametrize("stop", [";", ",", '"', "'", " "])
def test_a_bearer_credential_ends_at_a_separator(stop: str) -> None:
    """The redaction stops at the separators around a header value, so the rest stays readable."""
    assert redact(f"Bearer abc-def{stop}request-id=1") == f"<redacted>{stop}request-id=1"


def test_text_without_credentials_is_unchanged() -> None:
    """Ordinary Graph error text passes through untouched, 'bearer' without a value included."""
    text = "ErrorAccessDenied: Access is denied. Check credentials and try again (bearer)."
    assert redact(text) == text


def test_a_jwt_echoed_by_graph_never_reaches_the_dead_letter_description() -> None:
    """A 400 whose error message quotes the raw token is dead-lettered without the token."""
    response = GraphResponse(400, "InvalidAuthenticationToken", f"Token {JWT} is malformed.")
    description = decide(response, may_be_cancelled_already=False).description
    assert JWT not in description and "<redacted>" in description
    assert JWT.split(".")[2] not in description


KEY = "SharedAccess" + "Key"  # assembled so that secret scanners do not flag the fixtures


@pytest.mark.parametrize(
    "text",
    [
        "Endpoint=sb://contoso-sb.servicebus.windows.net/",
        f"ENDPOINT = sb://contoso-sb.servicebus.windows.net/;{KEY}Name=send",
        f"{KEY}Name=send",
        f"x;{KEY}=",
        "x; sharedaccesssignature=SharedAccessSignature sr=a",
        "EntityPath=cancel-requests",
        "Bearer opaque-token",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",
        "https://contoso-sb.servicebus.windows.net/q?sv=1&sig=abc",
    ],
)
def test_connection_string_fields_and_credentials_are_recognised(text: str) -> None:
    """Any field of a Service Bus connection string, in any case, or anything `redact` hides,
    marks a value that must not be repeated back."""
    assert looks_like_connection_string(text)


@pytest.mark.parametrize(
    "text",
    [
        "cancel-requests",
        "contoso-sb",
        "sb://contoso-sb.servicebus.windows.net/",
        "a=b",
        "bad name!",
    ],
)
def test_names_are_not_taken_for_connection_strings(text: str) -> None:
    """Queue names, namespace hosts and plain text with '=' are not connection strings."""
    assert not looks_like_connection_string(text)


@pytest.mark.parametrize(
    ("value", "limit", "shown"),
    [
        ("m-1\nsettlement outcome=complete", None, "m-1?settlement outcome=complete"),
        ("\x1b[2Jcleared \x9b31m", None, "?[2Jcleared ?31m"),
        (b"caf\xc3\xa9 \xff", None, "caf\u00e9 \ufffd"),
        ("a b\tc", 3, "a b"),
        (42, None, "42"),
    ],
)
def test_printable_shows_control_characters_as_question_marks(
    value: object, limit: int | None, shown: str
) -> None:
    """Line breaks, escape sequences (C0 and C1) and tabs become '?', bytes are read as UTF-8,
    spaces stay, and `limit` cuts before anything is shown."""
    assert printable(value, limit) == shown


def test_logs_and_the_terminal_sanitise_alike() -> None:
    """A log field and a terminal cell show the same characters for the same value; they differ
    only in how they show None and how they cut."""
    value = "m-1\r\nreason=\x1b[31mForged"
    assert log_safe(value) == safe(value) == printable(value)
    assert (log_safe(None), safe(None)) == (None, "-")
    assert log_safe("x" * 200, 128) == "x" * 128 and safe("x" * 200, 10) == "x" * 9 + "\u2026"


@pytest.mark.parametrize(
    ("error", "limit", "line"),
    [
        (RuntimeError("  first\nsecond"), None, "first"),
        (RuntimeError(f"Bearer {JWT}\nmore"), None, "<redacted>"),
        (RuntimeError(f"token {JWT}"), 12, "token <redac"),
        (OSError(), None, ""),
        (ValueError("   "), None, ""),
    ],
)
def test_first_line_of_an_error_is_redacted_before_it_is_cut(
    error: BaseException, limit: int | None, line: str
) -> None:
    """One line of an error for a person: the first, trimmed, credentials redacted before
    `limit` cuts (so no cut leaves a token's prefix unrecognised); empty without text."""
    assert first_line(error, limit) == line
