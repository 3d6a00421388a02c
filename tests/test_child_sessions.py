"""A date range's children on the session-enabled children queue (CHILD_QUEUE_NAME): the
settings, the SessionIds, the fan-out's sends, and the children's own path (delayed retries,
the last-delivery rule, replies) through the session trigger's pipeline."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from cancel_handler.core.errors import SettingsError
from cancel_handler.runtime import Processor
from cancel_handler.servicebus.fanout import child_message_id
from cancel_handler.servicebus.messages import PARENT_ID_PROPERTY, sealed
from cancel_handler.servicebus.senders import SenderPool
from cancel_handler.servicebus.sessions import child_session_id, organizer_hash
from cancel_handler.settings import load_settings
from tests.conftest import UPN, Loopback
from tests.fake_servicebus import FakeServiceBus
from tests.helpers import RecordingActions, RecordingSender, RecordingSleep, received_message
from tests.test_fanout_values import END, NOW, START, add_meetings

KEY = "a-key-of-the-app-0123"
NAMESPACE = "sb-test.servicebus.windows.net"
CHILDREN = {
    "CANCEL_QUEUE_NAME": "cancel-requests",
    "CHILD_QUEUE_NAME": "cancel-children",
    "CHILD_SESSION_KEY": KEY,
    "ServiceBusConnection__fullyQualifiedNamespace": NAMESPACE,
}


# -- settings ------------------------------------------------------------------------------------


def test_without_a_child_queue_children_stay_on_the_cancel_queue() -> None:
    """Unset (or blank), no children queue and no key: today's behaviour."""
    settings = load_settings({"CHILD_QUEUE_NAME": "  "})
    assert (settings.child_queue_name, settings.child_session_key) == ("", "")


def test_a_child_queue_needs_a_key_a_namespace_and_a_name_of_its_own() -> None:
    """CHILD_QUEUE_NAME is refused without a key of 12+ characters, without a namespace, when it
    names the cancel queue or is no queue name; each error names the setting."""
    assert load_settings(CHILDREN).child_queue_name == "cancel-children"
    cases = {
        "CHILD_SESSION_KEY": {**CHILDREN, "CHILD_SESSION_KEY": "short"},
        "CHILD_QUEUE_NAME": {**CHILDREN, "CHILD_QUEUE_NAME": "Cancel-Requests"},
    }
    for name, environ in cases.items():
        with pytest.raises(SettingsError) as error:
            load_settings(environ)
        assert error.value.setting == name
    no_namespace = {k: v for k, v in CHILDREN.items() if not k.startswith("ServiceBus")}
    with pytest.raises(SettingsError, match="fullyQualifiedNamespace"):
        load_settings(no_namespace)
    with pytest.raises(SettingsError, match="not a Service Bus queue name"):
        load_settings({**CHILDREN, "CHILD_QUEUE_NAME": "-bad name"})
    assert load_settings({**CHILDREN, "CHILD_SESSION_KEY": "x" * 12}).child_session_key
    with pytest.raises(SettingsError, match="must not name the children queue"):
        load_settings({**CHILDREN, "REPLY_TO_ALLOWED": "replies, CANCEL-children"})


NO_NAMESPACE = {k: v for k, v in CHILDREN.items() if not k.startswith("ServiceBus")}


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        (
            {**CHILDREN, "CHILD_QUEUE_NAME": "-bad name"},
            "CHILD_QUEUE_NAME: '-bad name' is not a Service Bus queue name (letters, digits, '.', "
            "'-', '_', '/'; starting and ending with a letter or digit; at most 260 characters)",
        ),
        (
            {**CHILDREN, "CHILD_QUEUE_NAME": "Cancel-Requests"},
            "CHILD_QUEUE_NAME: must name a session-enabled queue of its own, not the cancel "
            "queue 'Cancel-Requests'",
        ),
        (
            NO_NAMESPACE,
            "CHILD_QUEUE_NAME: children are sent through "
            "ServiceBusConnection__fullyQualifiedNamespace: set it",
        ),
        (
            {**CHILDREN, "CHILD_SESSION_KEY": "x" * 11},
            "CHILD_SESSION_KEY: CHILD_QUEUE_NAME needs a key of at least 12 characters for the "
            "organizer hash in the children's SessionIds",
        ),
        (
            {**CHILDREN, "REPLY_TO_ALLOWED": "replies, CANCEL-children"},
            "REPLY_TO_ALLOWED: must not name the children queue 'cancel-children'",
        ),
    ],
    ids=["name", "cancel queue", "namespace", "key", "reply"],
)
def test_each_refusal_names_the_setting_and_says_what_to_do(
    environ: dict[str, str], says: str
) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(environ)
    assert str(error.value) == f"app setting {says}"
    assert error.value.setting == says.split(":")[0]


# -- SessionIds ----------------------------------------------------------------------------------


def test_every_child_of_an_organizer_goes_to_the_organizers_session() -> None:
    """HMAC-SHA256 of the case-folded organizer under the key, 32 hex digits; the address never
    appears, another key or organizer gives another session."""
    assert organizer_hash("key-1", "adele@contoso.com") == "551a53cd47aa9c52d31809e17c16ee39"
    assert child_session_id("key-1", "Adele@Contoso.com") == "551a53cd47aa9c52d31809e17c16ee39"
    adele = organizer_hash("key-1", "adele@contoso.com")
    assert organizer_hash("key-2", "adele@contoso.com") != adele
    assert organizer_hash("key-1", "alex@contoso.com") != adele
    assert "adele" not in child_session_id("key-1", "adele@contoso.com")


# -- the fan-out ---------------------------------------------------------------------------------


def _processor(loopback: Loopback, bus: FakeServiceBus, entities: list[str], **env: str):
    settings = load_settings(
        {"GRAPH_BASE_URL": loopback.graph.graph_base_url, **CHILDREN, **env}
    )

    def sender(entity: str):
        entities.append(entity)
        return bus.get_queue_sender(bus.queue_name)

    return Processor(
        settings, senders=SenderPool(sender), sleep=RecordingSleep(), now=lambda: NOW
    )


def _run(processor: Processor, work) -> object:
    async def run():
        try:
            return await work(processor)
        finally:
            await processor.aclose()

    return asyncio.run(run())


def test_a_range_sends_its_children_to_the_children_queue_in_four_sessions(
    loopback: Loopback,
) -> None:
    """Six meetings: six children sent to CHILD_QUEUE_NAME (not the cancel queue), child k in
    the organizer's session, the parent completed FannedOut; the bodies are today's."""
    ids = add_meetings(loopback, 6)
    bus, entities, actions = FakeServiceBus(), [], RecordingActions()
    range_request = received_message(
        {"userPrincipalName": UPN, "startDateTime": START, "endDateTime": END},
        message_id="parent-1",
    )
    processor = _processor(loopback, bus, entities)
    _run(processor, lambda p: p.process(range_request, actions))
    assert actions.only.action == "complete"
    assert set(entities) == {"cancel-children"}
    expected_ids = [child_message_id("parent-1", event_id) for event_id in ids]
    assert [child.message_id for child in bus.sent] == expected_ids
    expected = [child_session_id(KEY, UPN)] * 6
    assert [child.session_id for child in bus.sent] == expected


def _child(event_id: str, **options: object):
    message_id = child_message_id("parent-1", event_id)
    return received_message(
        {"userPrincipalName": UPN, "eventId": event_id},
        message_id=message_id,
        application_properties=sealed(message_id, {PARENT_ID_PROPERTY: "parent-1"}),
        session_id=child_session_id(KEY, UPN),
        **options,
    )


def test_a_childs_delayed_retry_goes_back_to_its_session_on_the_children_queue(
    loopback: Loopback,
) -> None:
    """Delayed retries on: a throttled child on the session path schedules its copy on the
    children queue, in the child's own session, and completes the original."""
    from cancel_handler.devtools.graph_simulator import Fault

    loopback.graph.state.add_event(UPN, "EV-T")
    loopback.graph.state.script(
        UPN, "EV-T", *[Fault(429, headers={"Retry-After": "600"})] * 3
    )
    sender = RecordingSender()
    settings = load_settings(
        {
            "GRAPH_BASE_URL": loopback.graph.graph_base_url,
            **CHILDREN,
            "DELAYED_RETRY_MAX_COUNT": "3",
        }
    )
    entities: list[str] = []

    def senders(entity: str):
        entities.append(entity)
        return sender

    processor = Processor(
        settings, senders=SenderPool(senders), sleep=RecordingSleep(), now=lambda: NOW
    )
    actions = RecordingActions()
    _run(processor, lambda p: p.process_child(_child("EV-T"), actions))
    assert actions.only.action == "complete"
    assert entities == ["cancel-children"]
    [(copy, _when)] = sender.scheduled
    assert copy.session_id == child_session_id(KEY, UPN)


def test_a_child_still_failing_on_its_last_delivery_is_dead_lettered_by_the_function(
    loopback: Loopback,
) -> None:
    """The delivery-count rule holds on the session path: Graph down on delivery
    MAX_DELIVERY_COUNT dead-letters the child DeliveriesExhausted instead of giving it back."""
    from cancel_handler.devtools.graph_simulator import Fault

    loopback.graph.state.add_event(UPN, "EV-D")
    loopback.graph.state.script(UPN, "EV-D", *[Fault(503)] * 20)
    processor = _processor(
        loopback, FakeServiceBus(), [], MAX_DELIVERY_COUNT="10", CANCEL_RETRY_BUDGET_SECONDS="0"
    )
    actions = RecordingActions()
    _run(processor, lambda p: p.process_child(_child("EV-D", delivery_count=10), actions))
    assert (actions.only.action, actions.only.reason) == ("deadletter", "DeliveriesExhausted")
    earlier = RecordingActions()
    again = _processor(
        loopback, FakeServiceBus(), [], MAX_DELIVERY_COUNT="10", CANCEL_RETRY_BUDGET_SECONDS="0"
    )
    _run(again, lambda p: p.process_child(_child("EV-D", delivery_count=9), earlier))
    assert earlier.only.action == "abandon"


def test_a_child_on_the_session_path_is_answered_naming_its_parent(loopback: Loopback) -> None:
    """Replies hold on the session path: the child's sender gets its `cancelled` reply, which
    names the parent."""
    import json

    loopback.graph.state.add_event(UPN, "EV-R")
    replies = FakeServiceBus()
    entity = replies.add_entity("cancel-replies", sessions=False)
    settings = load_settings(
        {
            "GRAPH_BASE_URL": loopback.graph.graph_base_url,
            **CHILDREN,
            "REPLY_TO_ALLOWED": "cancel-replies",
        }
    )
    processor = Processor(
        settings,
        reply_senders=SenderPool(replies.reply_sender),
        fan_out_senders=SenderPool(lambda entity: None),
        sleep=RecordingSleep(),
        now=lambda: datetime.now(UTC),
    )
    actions = RecordingActions()
    _run(processor, lambda p: p.process_child(_child("EV-R", reply_to="cancel-replies"), actions))
    assert actions.only.action == "complete"
    [reply] = entity.sent
    data = json.loads(b"".join(reply.body))["data"]
    assert (data["outcome"], data["parentMessageId"]) == ("cancelled", "parent-1")


def test_a_dead_lettered_child_is_resubmitted_into_its_session() -> None:
    """`dlq resubmit` on the children queue: the copy keeps the child's SessionId (the queue
    refuses one without); a request from the cancel queue gets none."""
    from cancel_handler.ops.repair import resubmit_copy

    child = _child("EV-X", dead_letter_reason="GraphForbidden")
    assert resubmit_copy(child).session_id == child_session_id(KEY, UPN)
    request = received_message(
        {"userPrincipalName": UPN, "eventId": "EV-Y"}, dead_letter_reason="GraphForbidden"
    )
    assert resubmit_copy(request).session_id is None
