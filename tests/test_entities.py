"""Service Bus's naming rules for queues and topics, and its session-id limit, as Microsoft
documents them (resource-name-rules: 1-260 characters; letters, digits, '.', '-', '_', '/';
start and end with a letter or digit. Quotas: a session id has at most 128 characters)."""

from __future__ import annotations

import pytest

from cancel_handler.core.entities import entity_name_problem, session_id_problem

ALLOWED_TAIL = "only letters, digits, '.', '-', '_' and '/' are allowed"


@pytest.mark.parametrize(
    "name",
    ["q", "7", "cancel-replies", "booking/replies", "hr.outcomes", "A_b-c.d/e9", "r" * 260],
)
def test_names_azure_allows_pass(name: str) -> None:
    """Every documented character, and the full 260 characters, make a valid name."""
    assert entity_name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "it is empty"),
        ("r" * 261, "it is 261 characters long; the limit is 260"),
        ("bad name!", f"it contains ' ', '!'; {ALLOWED_TAIL}"),
        ("café-replies", f"it contains 'é'; {ALLOWED_TAIL}"),
        ("a;b=c:d@e#f*g", f"it contains ';', '=', ':', '@', '#' and others; {ALLOWED_TAIL}"),
        # exactly five odd characters are all named, with no "and others"
        ("a;b=c:d@e#f", f"it contains ';', '=', ':', '@', '#'; {ALLOWED_TAIL}"),
        # 260 characters is within the limit, so the odd character is what is wrong
        ("r" * 259 + "!", f"it contains '!'; {ALLOWED_TAIL}"),
        ("-replies", "it must start and end with a letter or digit"),
        ("replies_", "it must start and end with a letter or digit"),
        ("replies/", "it must start and end with a letter or digit"),
        (".", "it must start and end with a letter or digit"),
    ],
)
def test_names_azure_refuses_say_why(name: str, problem: str) -> None:
    """Each broken rule is named, without repeating the name itself."""
    assert entity_name_problem(name) == problem


def test_session_ids_up_to_128_characters_pass() -> None:
    """128 characters is Service Bus's limit; one more is refused with both numbers."""
    assert session_id_problem("s" * 128) is None
    assert session_id_problem("s" * 129) == "it is 129 characters long; the limit is 128"
