"""App settings at their edges: the documented ranges accepted to the last value and refused one
past it, whitespace, and the exact error a deployer reads at start-up."""

from __future__ import annotations

import pytest

from cancel_handler.core.errors import SettingsError
from cancel_handler.settings import is_loopback_host, load_settings

NO_EXTRAS = "must not carry credentials, a query or a fragment"


def _error(name: str, value: str) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings({name: value})
    assert caught.value.setting == name
    return str(caught.value)


def test_every_default_when_nothing_is_set() -> None:
    """Nothing set: global Graph, 30 s timeout, 60 s budget, 4 per mailbox, delayed retries
    off, no queue, client id or namespace."""
    settings = load_settings({})
    assert (settings.graph_base_url, settings.graph_timeout_seconds) == (
        "https://graph.microsoft.com/v1.0",
        30.0,
    )
    assert (settings.retry_budget_seconds, settings.mailbox_concurrency) == (60.0, 4)
    assert (settings.delayed_retry_max_count, settings.queue_name) == (0, "")
    assert settings.managed_identity_client_id is None and settings.servicebus_namespace is None


def test_blank_values_count_as_unset_and_values_are_trimmed() -> None:
    """Whitespace-only values fall back to the defaults; others are read without the spaces."""
    settings = load_settings(
        {
            "CANCEL_QUEUE_NAME": "  meeting-cancellations \n",
            "AZURE_CLIENT_ID": "   ",
            "GRAPH_TIMEOUT_SECONDS": " 12 ",
            "GRAPH_MAILBOX_CONCURRENCY": "\t",
            "GRAPH_BASE_URL": " ",
        }
    )
    assert settings.queue_name == "meeting-cancellations"
    assert settings.managed_identity_client_id is None
    assert settings.graph_timeout_seconds == 12.0 and settings.mailbox_concurrency == 4
    assert settings.graph_base_url == "https://graph.microsoft.com/v1.0"


@pytest.mark.parametrize(
    ("name", "field", "low", "high"),
    [
        ("GRAPH_MAILBOX_CONCURRENCY", "mailbox_concurrency", 1, 64),
        ("DELAYED_RETRY_MAX_COUNT", "delayed_retry_max_count", 0, 100),
    ],
)
def test_whole_number_ranges_are_inclusive(name: str, field: str, low: int, high: int) -> None:
    """The README's ranges hold to their last value; one past either end is refused with the
    range and the value in the error."""
    assert getattr(load_settings({name: str(low)}), field) == low
    assert getattr(load_settings({name: str(high)}), field) == high
    for value in (low - 1, high + 1):
        assert _error(name, str(value)) == (
            f"app setting {name}: must be between {low} and {high}, got {value}"
        )


def test_a_whole_number_setting_refuses_decimals() -> None:
    """'4.0' is not a whole number: the error quotes the value."""
    assert _error("GRAPH_MAILBOX_CONCURRENCY", "4.0") == (
        "app setting GRAPH_MAILBOX_CONCURRENCY: must be a whole number, got '4.0'"
    )


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("GRAPH_TIMEOUT_SECONDS", "0", "must be greater than 0"),
        ("GRAPH_TIMEOUT_SECONDS", "-0.5", "must be a finite number >= 0, got '-0.5'"),
        ("GRAPH_TIMEOUT_SECONDS", "inf", "must be a finite number >= 0, got 'inf'"),
        ("GRAPH_TIMEOUT_SECONDS", "soon", "must be a number of seconds, got 'soon'"),
        ("CANCEL_RETRY_BUDGET_SECONDS", "-1", "must be a finite number >= 0, got '-1'"),
        ("CANCEL_RETRY_BUDGET_SECONDS", "nan", "must be a finite number >= 0, got 'nan'"),
    ],
)
def test_seconds_settings_say_what_is_wrong(name: str, value: str, problem: str) -> None:
    """Bad durations stop start-up naming the setting, the rule and the value."""
    assert _error(name, value) == f"app setting {name}: {problem}"


def test_the_smallest_durations_are_accepted() -> None:
    """A budget of 0 (no waiting) and a timeout just above 0 are valid."""
    settings = load_settings({"CANCEL_RETRY_BUDGET_SECONDS": "0", "GRAPH_TIMEOUT_SECONDS": "0.01"})
    assert (settings.retry_budget_seconds, settings.graph_timeout_seconds) == (0.0, 0.01)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://graph.example/v1.0", "must be an absolute https:// URL, got 'ftp://graph.example/v1.0'"),
        ("https:///v1.0", "must be an absolute https:// URL, got 'https:///v1.0'"),
        ("https://u:p@graph.example/v1.0", NO_EXTRAS),
        ("https://u@graph.example/v1.0", NO_EXTRAS),
        ("https://graph.example/v1.0#x", NO_EXTRAS),
        ("https://graph.example/v1.0?a=b", NO_EXTRAS),
        (
            "http://graph.example/v1.0",
            "plain http:// is allowed only for loopback hosts (bearer tokens never travel "
            "unencrypted), got host 'graph.example'",
        ),
    ],
)
def test_unsafe_graph_urls_say_why(url: str, problem: str) -> None:
    """Each refused GRAPH_BASE_URL says which rule it breaks."""
    assert _error("GRAPH_BASE_URL", url) == f"app setting GRAPH_BASE_URL: {problem}"


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("https://graph.microsoft.com/v1.0//", "https://graph.microsoft.com/v1.0"),
        ("http://127.0.0.1:8080/GraphX/", "http://127.0.0.1:8080/GraphX"),
    ],
)
def test_only_trailing_slashes_are_dropped_from_the_graph_url(url: str, stored: str) -> None:
    """'…/v1.0/' is stored without the slash; the rest of the path is kept as given."""
    assert load_settings({"GRAPH_BASE_URL": url}).graph_base_url == stored


def test_settings_come_from_the_process_environment_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without an explicit mapping the app settings are read from os.environ."""
    monkeypatch.setenv("CANCEL_QUEUE_NAME", "from-the-environment")
    monkeypatch.setenv("GRAPH_MAILBOX_CONCURRENCY", "7")
    settings = load_settings()
    assert (settings.queue_name, settings.mailbox_concurrency) == ("from-the-environment", 7)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LocalHost", True),
        ("127.0.0.1", True),
        ("127.255.255.254", True),
        ("::1", True),
        ("128.0.0.1", False),
        ("::2", False),
        ("localhost.example", False),
        ("graph.microsoft.com", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    """Only 'localhost' (any case) and loopback addresses count as loopback."""
    assert is_loopback_host(host) is loopback
