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
NOT_FOLLOWED = "; it was not followed, so the access token did not leave Graph"


def off_graph(where: str, *differences: str) -> str:
    return f"Graph's @odata.nextLink points to {where}: {' and '.join(differences)}{NOT_FOLLOWED}"


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
    "link",
    [
        "https://graph.microsoft.com:443/v1.0/users/u/calendarView?$skiptoken=abc",
        "HTTPS://graph.microsoft.com:443/v1.0/users/u",
    ],
)
def test_https_default_port_written_out_is_the_same_origin(link: str) -> None:
    """`:443` on an https link is the port a link without one uses (RFC 9110 section 4.2)."""
    assert next_link_problem(BASE, link) is None


def test_a_base_url_with_its_default_port_follows_links_without_one() -> None:
    assert next_link_problem("https://graph.microsoft.com:443/v1.0", FOLLOWED) is None
    assert next_link_problem("http://localhost:80/v1.0", "http://localhost/v1.0/u") is None


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        (
            "https://attacker.example/v1.0/users/u/calendarView",
            off_graph(
                "https://attacker.example",
                "its host attacker.example is not GRAPH_BASE_URL's graph.microsoft.com",
            ),
        ),
        (
            "http://graph.microsoft.com/v1.0/users/u/calendarView",
            off_graph(
                "http://graph.microsoft.com",
                "its scheme http is not GRAPH_BASE_URL's https",
                "its port 80 is not GRAPH_BASE_URL's 443",
            ),
        ),
        (
            "https://graph.microsoft.com:8443/v1.0/users/u",
            off_graph(
                "https://graph.microsoft.com:8443", "its port 8443 is not GRAPH_BASE_URL's 443"
            ),
        ),
        (
            "http://graph.microsoft.com:443/v1.0/users/u",
            off_graph(
                "http://graph.microsoft.com:443", "its scheme http is not GRAPH_BASE_URL's https"
            ),
        ),
        (
            "https://graph.microsoft.com.attacker.example/v1.0",
            off_graph(
                "https://graph.microsoft.com.attacker.example",
                "its host graph.microsoft.com.attacker.example is not GRAPH_BASE_URL's "
                "graph.microsoft.com",
            ),
        ),
        (
            "/v1.0/users/u/calendarView?$skiptoken=abc",  # relative: no scheme, no host
            off_graph(
                "://?",
                "its scheme (none) is not GRAPH_BASE_URL's https",
                "its host (none) is not GRAPH_BASE_URL's graph.microsoft.com",
                "its port (none) is not GRAPH_BASE_URL's 443",
            ),
        ),
        (
            "https:///v1.0/users/u",
            off_graph("https://?", "its host (none) is not GRAPH_BASE_URL's graph.microsoft.com"),
        ),
    ],
    ids=["host", "scheme", "port", "scheme-with-443", "look-alike", "relative", "no-host"],
)
def test_a_link_off_graph_is_refused_naming_each_part_that_differs(
    link: str, expected: str
) -> None:
    assert next_link_problem(BASE, link) == expected


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
    assert next_link_problem(base, "http://127.0.0.1:8081/v1.0/users/u") == off_graph(
        "http://127.0.0.1:8081", "its port 8081 is not GRAPH_BASE_URL's 8080"
    )
