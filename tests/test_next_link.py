"""Graph's `@odata.nextLink` is followed with the bearer token only while it stays on Graph.

A calendarView page names the next page by an absolute URL that Graph (or whatever answers in
its place) chooses; following it sends the access token there. Each case changes one part of
the link, so each condition of the rule has a case that fails without it.
"""

from __future__ import annotations

import pytest

from cancel_handler.graph.calendar_view import next_link_problem

BASE = "https://graph.microsoft.com/v1.0"
FOLLOWED = "https://graph.microsoft.com/v1.0/users/u/calendarView?$skiptoken=abc"
OFF_GRAPH = (
    "Graph's @odata.nextLink points to {where}, not to GRAPH_BASE_URL's scheme and host; it was "
    "not followed, so the access token did not leave Graph"
)


@pytest.mark.parametrize(
    "link",
    [
        FOLLOWED,
        "HTTPS://GRAPH.MICROSOFT.COM/v1.0/users/u/calendarView?$skiptoken=abc",  # case-blind
        "https://graph.microsoft.com/beta/users/u/calendarView",  # another path on Graph
    ],
)
def test_a_link_on_graphs_scheme_and_host_is_followed(link: str) -> None:
    assert next_link_problem(BASE, link) is None


def test_an_upper_case_base_url_host_still_matches() -> None:
    assert next_link_problem("https://Graph.Microsoft.com/v1.0", FOLLOWED) is None


@pytest.mark.parametrize(
    ("link", "where"),
    [
        ("https://attacker.example/v1.0/users/u/calendarView", "https://attacker.example"),
        ("http://graph.microsoft.com/v1.0/users/u/calendarView", "http://graph.microsoft.com"),
        ("https://graph.microsoft.com:8443/v1.0/users/u", "https://graph.microsoft.com"),
        (
            "https://graph.microsoft.com.attacker.example/v1.0",
            "https://graph.microsoft.com.attacker.example",
        ),
        ("/v1.0/users/u/calendarView?$skiptoken=abc", "://?"),  # relative: no scheme, no host
        ("https:///v1.0/users/u", "https://?"),
    ],
)
def test_a_link_off_graph_is_refused_and_says_where_it_pointed(link: str, where: str) -> None:
    assert next_link_problem(BASE, link) == OFF_GRAPH.format(where=where)


@pytest.mark.parametrize(
    "link",
    [
        "https://user@graph.microsoft.com/v1.0/users/u",
        "https://:secret@graph.microsoft.com/v1.0/users/u",
        "https://user:secret@graph.microsoft.com/v1.0/users/u",
    ],
)
def test_a_link_carrying_credentials_is_refused(link: str) -> None:
    assert next_link_problem(BASE, link) == (
        "Graph's @odata.nextLink carries credentials; it was not followed"
    )


@pytest.mark.parametrize(
    "link", ["https://graph.microsoft.com:99999/v1.0", "https://graph.microsoft.com:x/v1.0"]
)
def test_a_link_that_is_not_a_url_is_refused(link: str) -> None:
    assert next_link_problem(BASE, link) == (
        "Graph's @odata.nextLink is not a valid URL; it was not followed"
    )


def test_a_loopback_base_url_with_a_port_follows_its_own_port_only() -> None:
    """The simulator's base URL has a port: the link must keep it."""
    base = "http://127.0.0.1:8080/v1.0"
    assert next_link_problem(base, "http://127.0.0.1:8080/v1.0/users/u?$skip=1") is None
    assert next_link_problem(base, "http://127.0.0.1:8081/v1.0/users/u") == OFF_GRAPH.format(
        where="http://127.0.0.1"
    )
