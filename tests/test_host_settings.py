"""The retry budget must fit in the time the Functions host renews a message's lock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cancel_handler.core.errors import SettingsError
from cancel_handler.host_settings import lock_renewal_seconds
from cancel_handler.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent

OVERRIDE = "AzureFunctionsJobHost__extensions__serviceBus__maxAutoLockRenewalDuration"


def host_json(tmp_path: Path, service_bus: dict | None) -> Path:
    path = tmp_path / "host.json"
    extensions = {} if service_bus is None else {"serviceBus": service_bus}
    path.write_text(json.dumps({"version": "2.0", "extensions": extensions}))
    return path


def test_the_shipped_host_json_renews_locks_for_five_minutes() -> None:
    """host.json sets maxAutoLockRenewalDuration 00:05:00."""
    assert lock_renewal_seconds({}) == 300


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("00:05:00", 300), ("00:10:30", 630), ("1.02:00:00", 93600), ("00:00:01.5", 1.5)],
)
def test_host_json_time_spans_are_read(tmp_path: Path, value: str, seconds: float) -> None:
    path = host_json(tmp_path, {"maxAutoLockRenewalDuration": value})
    assert lock_renewal_seconds({}, path) == seconds


def test_the_app_setting_override_wins(tmp_path: Path) -> None:
    """AzureFunctionsJobHost__… overrides host.json, as the host does."""
    path = host_json(tmp_path, {"maxAutoLockRenewalDuration": "00:05:00"})
    assert lock_renewal_seconds({OVERRIDE: "00:20:00"}, path) == 1200


def test_without_the_setting_the_extensions_default_of_five_minutes_holds(tmp_path: Path) -> None:
    assert lock_renewal_seconds({}, host_json(tmp_path, None)) == 300
    assert lock_renewal_seconds({}, tmp_path / "absent.json") == 300


@pytest.mark.parametrize("value", ["5 minutes", "00:60:00", "", 300])
def test_an_unreadable_time_span_is_refused_by_name(tmp_path: Path, value: object) -> None:
    path = host_json(tmp_path, {"maxAutoLockRenewalDuration": value})
    with pytest.raises(SettingsError) as caught:
        lock_renewal_seconds({}, path)
    assert str(caught.value) == (
        "app setting host.json extensions.serviceBus.maxAutoLockRenewalDuration: must be a "
        f"time span like 00:05:00, got {value!r}"
    )


@pytest.mark.parametrize("budget", ["0", "60", "240"])
def test_a_budget_that_fits_five_minutes_is_accepted(budget: str) -> None:
    """5 min - 30 s (Graph timeout) - 30 s (token and settlement) = 240 s at most."""
    assert load_settings({"CANCEL_RETRY_BUDGET_SECONDS": budget}).retry_budget_seconds == float(
        budget
    )


@pytest.mark.parametrize(("budget", "shown"), [("241", "241"), ("1e9", "1e+09")])
def test_a_budget_that_outlasts_the_lock_renewal_is_refused(budget: str, shown: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"CANCEL_RETRY_BUDGET_SECONDS": budget})
    assert str(caught.value) == (
        f"app setting CANCEL_RETRY_BUDGET_SECONDS: {shown} s of retrying, plus "
        "GRAPH_TIMEOUT_SECONDS (30 s) and 30 s for the token and the settlement, outlasts the "
        "300 s the host renews a message's lock (maxAutoLockRenewalDuration); set it to at "
        "most 240"
    )


def test_a_longer_renewal_allows_a_longer_budget() -> None:
    env = {OVERRIDE: "00:10:00", "CANCEL_RETRY_BUDGET_SECONDS": "540"}
    assert load_settings(env).retry_budget_seconds == 540


def test_a_graph_timeout_alone_over_the_renewal_names_the_timeout() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"GRAPH_TIMEOUT_SECONDS": "271", "CANCEL_RETRY_BUDGET_SECONDS": "0"})
    assert str(caught.value) == (
        "app setting GRAPH_TIMEOUT_SECONDS: 271 s for one Graph call, plus 30 s for the token "
        "and the settlement, outlasts the 300 s the host renews a message's lock "
        "(maxAutoLockRenewalDuration); set it to at most 270"
    )


def test_a_bad_override_is_refused_by_its_app_setting_name() -> None:
    with pytest.raises(SettingsError) as caught:
        lock_renewal_seconds({OVERRIDE: "5m"})
    assert str(caught.value) == (
        f"app setting {OVERRIDE}: must be a time span like 00:05:00, got '5m'"
    )


def test_a_host_json_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "host.json"
    path.write_text("{not json")
    with pytest.raises(SettingsError) as caught:
        lock_renewal_seconds({}, path)
    assert str(caught.value) == "app setting host.json: cannot be read (JSONDecodeError)"


@pytest.mark.parametrize(
    "document",
    [[], {"extensions": []}, {"extensions": {"serviceBus": []}}, {"extensions": None}],
    ids=["a-list", "extensions-a-list", "servicebus-a-list", "extensions-null"],
)
def test_a_host_json_of_another_shape_keeps_the_default(tmp_path: Path, document: object) -> None:
    """Sections that are not objects hold no setting: the extension's 5 minutes apply."""
    path = tmp_path / "host.json"
    path.write_text(json.dumps(document))
    assert lock_renewal_seconds({}, path) == 300


@pytest.mark.parametrize(
    ("timeout", "named", "most"),
    [("270", "CANCEL_RETRY_BUDGET_SECONDS", "0"), ("269.5", "CANCEL_RETRY_BUDGET_SECONDS", "0.5"),
     ("270.5", "GRAPH_TIMEOUT_SECONDS", "270")],
)
def test_the_setting_to_lower_is_the_budget_while_any_budget_fits(
    timeout: str, named: str, most: str
) -> None:
    """With 300 s of renewal and 30 s of margin, a timeout of up to 270 s leaves a budget of
    0 s or more to name; beyond it, the timeout itself is what must come down."""
    with pytest.raises(SettingsError) as caught:
        load_settings({"GRAPH_TIMEOUT_SECONDS": timeout, "CANCEL_RETRY_BUDGET_SECONDS": "1"})
    assert str(caught.value).startswith(f"app setting {named}: ")
    assert str(caught.value).endswith(f"set it to at most {most}")


def test_each_organizer_gets_four_calls_in_its_session_and_dynamic_concurrency_stays_off() -> None:
    """The children's trigger runs 4 calls per session (Graph's 4 concurrent requests per app
    and mailbox; cancel_handler/servicebus/sessions.py). The Service Bus extension reads
    maxConcurrentCallsPerSession from 5.13.0 on, the release that added the settlement the
    function already needs (its CHANGELOG), and sets it to 1 whenever dynamic concurrency is on
    (ServiceBusOptions.ToSessionProcessorOptions): host.json must not turn that on."""
    document = json.loads((ROOT / "host.json").read_text())
    assert document["extensions"]["serviceBus"]["maxConcurrentCallsPerSession"] == 4
    assert not document.get("concurrency", {}).get("dynamicConcurrencyEnabled", False)
