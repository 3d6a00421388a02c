"""App settings: defaults, derived token scope, and fail-fast errors that name the setting."""

from __future__ import annotations

import pytest

from cancel_handler.core.errors import SettingsError
from cancel_handler.settings import load_settings


def test_defaults_target_global_graph() -> None:
    """With nothing set, the function talks to global Graph with the documented defaults."""
    settings = load_settings({})
    assert settings.graph_base_url == "https://graph.microsoft.com/v1.0"
    assert settings.graph_scope == "https://graph.microsoft.com/.default"
    assert settings.retry_budget_seconds == 60
    assert settings.mailbox_concurrency == 4
    assert settings.managed_identity_client_id is None


@pytest.mark.parametrize(
    ("url", "scope"),
    [
        ("https://graph.microsoft.us/v1.0", "https://graph.microsoft.us/.default"),
        ("https://dod-graph.microsoft.us/v1.0/", "https://dod-graph.microsoft.us/.default"),
        (
            "https://microsoftgraph.chinacloudapi.cn/v1.0",
            "https://microsoftgraph.chinacloudapi.cn/.default",
        ),
        ("http://127.0.0.1:8080/v1.0", "http://127.0.0.1:8080/.default"),
    ],
)
def test_scope_follows_the_graph_url(url: str, scope: str) -> None:
    """National clouds work by setting GRAPH_BASE_URL alone: the scope is derived from it."""
    assert load_settings({"GRAPH_BASE_URL": url}).graph_scope == scope


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.8.9.10", "[::1]"])
def test_plain_http_is_allowed_for_loopback(host: str) -> None:
    """Loopback simulators may use http://."""
    assert load_settings({"GRAPH_BASE_URL": f"http://{host}:9/v1.0"}).graph_base_url


@pytest.mark.parametrize(
    "url",
    [
        "http://graph.microsoft.com/v1.0",
        "http://10.0.0.5/v1.0",
        "http://localhost.evil.example/v1.0",
        "ftp://graph.microsoft.com/v1.0",
        "graph.microsoft.com/v1.0",
        "https://user:pw@graph.microsoft.com/v1.0",
        "https://graph.microsoft.com/v1.0?x=1",
    ],
)
def test_unsafe_graph_urls_are_refused_naming_the_setting(url: str) -> None:
    """A bearer token never travels over plain HTTP to a non-loopback host."""
    with pytest.raises(SettingsError) as caught:
        load_settings({"GRAPH_BASE_URL": url})
    assert caught.value.setting == "GRAPH_BASE_URL"
    assert "GRAPH_BASE_URL" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GRAPH_TIMEOUT_SECONDS", "0"),
        ("GRAPH_TIMEOUT_SECONDS", "fast"),
        ("GRAPH_TIMEOUT_SECONDS", "nan"),
        ("CANCEL_RETRY_BUDGET_SECONDS", "-1"),
        ("CANCEL_RETRY_BUDGET_SECONDS", "inf"),
        ("GRAPH_MAILBOX_CONCURRENCY", "0"),
        ("GRAPH_MAILBOX_CONCURRENCY", "4.5"),
        ("DELAYED_RETRY_MAX_COUNT", "-2"),
        ("MAX_DELIVERY_COUNT", "-1"),
        ("MAX_DELIVERY_COUNT", "ten"),
        ("TRACE_SUCCESSES_PER_SECOND", "-1"),
        ("TRACE_SUCCESSES_PER_SECOND", "nan"),
        ("TRACE_SUCCESSES_PER_SECOND", "inf"),
        ("TRACE_SUCCESSES_PER_SECOND", "every"),
    ],
)
def test_invalid_numbers_fail_fast_naming_the_setting(name: str, value: str) -> None:
    """Invalid values stop start-up with an error that names the setting and the value."""
    with pytest.raises(SettingsError) as caught:
        load_settings({name: value})
    assert caught.value.setting == name
    assert name in str(caught.value)


@pytest.mark.parametrize(
    ("value", "kept"),
    [(None, 5.0), ("0", 0.0), ("0.5", 0.5), ("20", 20.0), ("all", None), (" ALL ", None)],
)
def test_successes_traced_a_second(value: str | None, kept: float | None) -> None:
    """Unset: 5 a second, Azure Monitor's default for its rate-limited sampler; `all`: every
    one (None); else the number given, 0 included."""
    environ = {} if value is None else {"TRACE_SUCCESSES_PER_SECOND": value}
    assert load_settings(environ).trace_successes_per_second == kept


def test_the_mailbox_hash_key_is_read_and_never_shown() -> None:
    assert load_settings({}).telemetry_hash_key == ""
    settings = load_settings({"TELEMETRY_HASH_KEY": " key-of-this-app "})
    assert settings.telemetry_hash_key == "key-of-this-app"
    assert "key-of-this-app" not in repr(settings)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("every", "must be `all` or a number of traces a second, got 'every'"),
        ("-1", "must be `all` or a finite number >= 0, got '-1'"),
    ],
)
def test_successes_traced_a_second_says_what_it_takes(value: str, says: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"TRACE_SUCCESSES_PER_SECOND": value})
    assert str(caught.value) == f"app setting TRACE_SUCCESSES_PER_SECOND: {says}"


@pytest.mark.parametrize("value", ["0", "1", "2147483647"])
def test_max_delivery_count_takes_what_a_queue_can_hold(value: str) -> None:
    """0 (not told) up to Service Bus's largest MaxDeliveryCount, a 32-bit signed integer."""
    assert load_settings({"MAX_DELIVERY_COUNT": value}).max_delivery_count == int(value)


def test_max_delivery_count_beyond_32_bits_names_the_range() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"MAX_DELIVERY_COUNT": "2147483648"})
    assert str(caught.value) == (
        "app setting MAX_DELIVERY_COUNT: must be between 0 and 2147483647, got 2147483648"
    )


def test_values_are_read() -> None:
    """Each setting lands in its field."""
    settings = load_settings(
        {
            "CANCEL_QUEUE_NAME": "q",
            "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000001",
            "GRAPH_TIMEOUT_SECONDS": "12.5",
            "CANCEL_RETRY_BUDGET_SECONDS": "0",
            "GRAPH_MAILBOX_CONCURRENCY": "2",
            "DELAYED_RETRY_MAX_COUNT": "3",
            "REPLY_TO_ALLOWED": " cancel-replies ,booking/replies,, hr.outcomes ",
            "MAX_DELIVERY_COUNT": "10",
            "ServiceBusConnection__fullyQualifiedNamespace": "ns.servicebus.windows.net",
        }
    )
    assert settings.reply_to_allowed == ("cancel-replies", "booking/replies", "hr.outcomes")
    assert settings.max_delivery_count == 10
    assert settings.queue_name == "q"
    assert settings.managed_identity_client_id == "00000000-0000-0000-0000-000000000001"
    assert (settings.graph_timeout_seconds, settings.retry_budget_seconds) == (12.5, 0)
    assert (settings.mailbox_concurrency, settings.delayed_retry_max_count) == (2, 3)
    assert settings.servicebus_namespace == "ns.servicebus.windows.net"


def test_range_defaults() -> None:
    """Date ranges default to at most 366 days and 500 meetings per request."""
    settings = load_settings({})
    assert (settings.range_max_days, settings.range_max_events) == (366, 500)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"RANGE_MAX_DAYS": "1825"}, (1825, 500)),
        ({"RANGE_MAX_DAYS": "1"}, (1, 500)),
        ({"RANGE_MAX_EVENTS": "0"}, (366, 0)),
        ({"RANGE_MAX_EVENTS": "800"}, (366, 800)),
    ],
)
def test_range_limits_are_read(env: dict, expected: tuple) -> None:
    """RANGE_MAX_DAYS may go up to Remove-CalendarEvents' 1825 days; RANGE_MAX_EVENTS=0 is off."""
    settings = load_settings(env)
    assert (settings.range_max_days, settings.range_max_events) == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RANGE_MAX_DAYS", "1826"),
        ("RANGE_MAX_DAYS", "0"),
        ("RANGE_MAX_DAYS", "a year"),
        ("RANGE_MAX_EVENTS", "-1"),
        ("RANGE_MAX_EVENTS", "801"),
    ],
)
def test_bad_range_limits_stop_start_up(name: str, value: str) -> None:
    """An out-of-range limit fails at start-up naming the setting."""
    with pytest.raises(SettingsError) as caught:
        load_settings({name: value})
    assert caught.value.setting == name


def test_replies_and_last_delivery_rule_are_off_by_default() -> None:
    """Without REPLY_TO_ALLOWED and MAX_DELIVERY_COUNT nothing is answered and nothing changes."""
    settings = load_settings({})
    assert settings.reply_to_allowed == ()
    assert settings.max_delivery_count == 0


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("replies, meeting-cancellations", "must not name the cancel queue"),
        ("replies, Meeting-Cancellations", "must not name the cancel queue"),
        ("replies;other", "is not a Service Bus queue or topic name"),
        ("-replies", "is not a Service Bus queue or topic name"),
        ("r" * 261, "is not a Service Bus queue or topic name"),
        ("replies_", "is not a Service Bus queue or topic name"),
    ],
)
def test_bad_reply_entities_fail_fast(value: str, problem: str) -> None:
    """REPLY_TO_ALLOWED must list valid entity names, never the cancel queue itself."""
    with pytest.raises(SettingsError) as caught:
        load_settings(
            {
                "CANCEL_QUEUE_NAME": "meeting-cancellations",
                "REPLY_TO_ALLOWED": value,
                "ServiceBusConnection__fullyQualifiedNamespace": "ns.servicebus.windows.net",
            }
        )
    assert caught.value.setting == "REPLY_TO_ALLOWED"
    assert problem in str(caught.value)


def test_replies_need_the_namespace() -> None:
    """Replies are sent with the Service Bus SDK, so the namespace must be set too."""
    with pytest.raises(SettingsError) as caught:
        load_settings({"REPLY_TO_ALLOWED": "cancel-replies"})
    assert str(caught.value) == (
        "app setting REPLY_TO_ALLOWED: replies need "
        "ServiceBusConnection__fullyQualifiedNamespace to be set too"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "replies;other",
            "app setting REPLY_TO_ALLOWED: 'replies;other' is not a Service Bus queue or topic "
            "name (letters, digits, '.', '-', '_', '/'; starting and ending with a letter or "
            "digit; at most 260 characters)",
        ),
        (
            "replies, Meeting-Cancellations",
            "app setting REPLY_TO_ALLOWED: must not name the cancel queue "
            "'meeting-cancellations' itself",
        ),
    ],
)
def test_reply_entity_errors_tell_the_operator_the_whole_rule(value: str, message: str) -> None:
    """The operator reads the whole text in the start-up failure: every part of it is asserted."""
    with pytest.raises(SettingsError) as caught:
        load_settings(
            {
                "CANCEL_QUEUE_NAME": "meeting-cancellations",
                "REPLY_TO_ALLOWED": value,
                "ServiceBusConnection__fullyQualifiedNamespace": "ns.servicebus.windows.net",
            }
        )
    assert str(caught.value) == message
