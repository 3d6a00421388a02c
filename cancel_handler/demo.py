"""Local demo: the real function processes sample cancel requests end to end, on loopback.

Run with `make demo` (or `python -m cancel_handler.demo`). No Azure account is needed: a managed-
identity endpoint, Microsoft Graph and the Functions host's settlement service are simulated by
the real protocols on 127.0.0.1, and `function_app` is imported and invoked as the worker would.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cancel_handler.devtools.functions_host import LoopbackQueue, settlement_host
from cancel_handler.devtools.graph_simulator import Fault, GraphSimulator, Meeting
from cancel_handler.devtools.host_message import delivered_copy, host_delivered_message
from cancel_handler.devtools.identity_endpoint import IdentityEndpoint, TokenAuthority
from cancel_handler.devtools.reply_queue import LocalReplyQueue
from cancel_handler.runtime import send_locally
from cancel_handler.servicebus.senders import SenderPool

ORGANIZER = "adele.vance@contoso.com"
ATTENDEE = "megan.bowen@contoso.com"
OUTSIDER = "ceo@contoso.com"
LEAVER = "alex.wilber@contoso.com"
#: A room-booking tool's UID for one of Adele's meetings (quotes are legal in a UID).
ROOM_BOOKING_UID = "room-booking-4711-'Board room'@contoso.com"
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
LEAVE = {
    "userPrincipalName": LEAVER,
    "startDateTime": (TODAY + timedelta(days=7)).isoformat(),
    "endDateTime": (TODAY + timedelta(days=21)).isoformat(),
    "comment": "Alex is on leave; Adele will rebook.",
}
CANCEL_QUEUE = "meeting-cancellations"
#: The session-enabled children queue (CHILD_QUEUE_NAME): a leave's child requests go there, each
#: in its organizer's session, and the session trigger takes them.
CHILD_QUEUE = "meeting-cancellations-children"
REPLY_QUEUE = "cancel-replies"
REPLY_SESSION = "demo-run"


@dataclass(frozen=True)
class Scenario:
    """One sample message and what the simulated Graph knows about it."""

    title: str
    body: dict | bytes
    event_id: str = ""
    delivery_count: int = 1


SCENARIOS = [
    Scenario(
        "organizer cancels, with a comment",
        {"userPrincipalName": ORGANIZER, "eventId": "AAMkEvt-001=", "comment": "Room closed."},
        "AAMkEvt-001=",
    ),
    Scenario(
        "attendee's copy: only the organizer may cancel",
        {"userPrincipalName": ATTENDEE, "eventId": "AAMkEvt-002="},
        "AAMkEvt-002=",
    ),
    Scenario("malformed body", b'{"userPrincipalName": "adele.vance@contoso.com", eventId: }'),
    Scenario(
        "unknown event id",
        {"userPrincipalName": ORGANIZER, "eventId": "AAMkNoSuchEvt="},
        "AAMkNoSuchEvt=",
    ),
    Scenario(
        "throttled (429, Retry-After: 1), then accepted",
        {"userPrincipalName": ORGANIZER, "eventId": "AAMkEvt-005="},
        "AAMkEvt-005=",
    ),
    Scenario(
        "redelivered after an earlier attempt cancelled it",
        {"userPrincipalName": ORGANIZER, "eventId": "AAMkEvt-006="},
        "AAMkEvt-006=",
        delivery_count=2,
    ),
    Scenario(
        "mailbox outside the app's access scope",
        {"userPrincipalName": OUTSIDER, "eventId": "AAMkEvt-007="},
        "AAMkEvt-007=",
    ),
    Scenario(
        "by iCalUId (a room-booking tool's UID, quotes and all)",
        {"userPrincipalName": ORGANIZER, "iCalUId": ROOM_BOOKING_UID, "comment": "Room closed."},
    ),
    Scenario("leave, previewed: what would be cancelled", {**LEAVE, "preview": True}),
    Scenario("leave: fanned out, one child request per meeting", LEAVE),
]


def _seed(graph: GraphSimulator) -> None:
    state = graph.state
    state.add_event(ORGANIZER, "AAMkEvt-001=")
    state.add_event(ATTENDEE, "AAMkEvt-002=", organizer=False)
    state.add_event(ORGANIZER, "AAMkEvt-005=")
    state.script(ORGANIZER, "AAMkEvt-005=", Fault(429, {"Retry-After": "1"}))
    state.add_event(ORGANIZER, "AAMkEvt-006=")
    state.cancelled.add((ORGANIZER, "AAMkEvt-006="))
    state.forbidden_mailboxes.add(OUTSIDER)
    soon = TODAY + timedelta(days=3, hours=9)
    state.add_meeting(ORGANIZER, Meeting("AAMkEvt-008=", soon, soon + timedelta(hours=1),
                                         ical_uid=ROOM_BOOKING_UID))
    # Alex's calendar around the leave (days 7 to 21): a weekly series whose occurrences on
    # days 8, 15 fall inside (days 1 and 22 stay), a one-off meeting, and three that are skipped.
    start = TODAY + timedelta(days=1, hours=10)
    state.add_series(LEAVER, "AAMkWeekly=", start, 4, every=timedelta(days=7))
    one_off = TODAY + timedelta(days=10, hours=14)
    state.add_meeting(LEAVER, Meeting("AAMkReview=", one_off, one_off + timedelta(hours=1)))
    state.add_meeting(LEAVER, Meeting("AAMkInvited=", one_off, one_off + timedelta(hours=1),
                                      organizer=False))
    state.add_meeting(LEAVER, Meeting("AAMkFocus=", one_off - timedelta(hours=3),
                                      one_off - timedelta(hours=1), attendees=0))
    state.add_meeting(LEAVER, Meeting("AAMkOld=", one_off + timedelta(days=1),
                                      one_off + timedelta(days=1, hours=1), cancelled=True))


async def _invoke_all(
    function_app, actions, graph: GraphSimulator, children_queue: LoopbackQueue
) -> list[tuple]:
    """Invoke the cancel function once per scenario, each message asking for a reply, then the
    session trigger once per child request a date range sent to the children queue."""
    functions = {
        f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()
    }
    rows: list[tuple] = []
    pending = [(scenario, None) for scenario in SCENARIOS]
    while pending:
        scenario, message = pending.pop(0)
        is_child = message is not None
        user_function = functions["cancel_child_meeting" if is_child else "cancel_meeting"]
        if message is None:
            message = host_delivered_message(
                scenario.body,
                delivery_count=scenario.delivery_count,
                message_id=f"demo-{len(rows) + 1}",
                reply_to=REPLY_QUEUE,
                reply_to_session_id=REPLY_SESSION,
            )
        first_call = len(graph.state.calls)
        try:
            await user_function(message, actions)
            failure = None
        except Exception as exc:  # shown in the table; the host would redeliver
            failure = f"invocation failed: {type(exc).__name__}"
        rows.append((scenario, message, failure, graph.state.calls[first_call:]))
        children = [
            (_child_scenario(child), delivered_copy(child)) for child in children_queue.take()
        ]
        pending[:0] = children
    await function_app.processor.aclose()
    return rows


def _child_scenario(child) -> Scenario:
    body = json.loads(b"".join(child.body))
    # The SessionId: the organizer's keyed hash (shortened here), never the address.
    session = f"{child.session_id[:6]}…"
    return Scenario(f"  child request: {body['eventId']} (session {session})", body)


class _SettlementLog(logging.Handler):
    """Keeps the structured settlement line of each message, by message id."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.by_message: dict[str, dict] = {}

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "cancel_handler", None)
        if fields:
            self.by_message[fields["message_id"]] = fields


def main(argv: list[str] | None = None) -> int:
    """Run every scenario through `function_app` and print what happened to each message."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="show the function's log lines")
    parser.add_argument(
        "--spans",
        action="store_true",
        help="show the function's spans, one line each (OTLP instead when "
        "OTEL_EXPORTER_OTLP_ENDPOINT is set)",
    )
    args = parser.parse_args(argv)
    providers: tuple = ()
    if args.spans or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from cancel_handler.telemetry.local import configure_demo

        # Before function_app is imported, as the worker does it in Azure.
        providers = configure_demo()
    logging.basicConfig(level=logging.INFO, format="  log %(levelname)s %(name)s: %(message)s")
    logging.getLogger().handlers[0].setLevel(logging.INFO if args.verbose else logging.ERROR)
    logging.getLogger("azure").setLevel(logging.ERROR)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settlement_log, range_log = _SettlementLog(), _SettlementLog()
    logging.getLogger("cancel_handler.settlement").addHandler(settlement_log)
    logging.getLogger("cancel_handler.servicebus.fanout").addHandler(range_log)

    authority = TokenAuthority()
    with IdentityEndpoint(authority) as identity, GraphSimulator(authority) as graph:
        _seed(graph)
        os.environ.update(identity.environment)
        os.environ.update(
            {
                "GRAPH_BASE_URL": graph.graph_base_url,
                "CANCEL_QUEUE_NAME": CANCEL_QUEUE,
                "CHILD_QUEUE_NAME": CHILD_QUEUE,
                "CHILD_SESSION_KEY": "demo-child-session-key",
                "CANCEL_RETRY_BUDGET_SECONDS": "10",
                "REPLY_TO_ALLOWED": REPLY_QUEUE,
                "MAX_DELIVERY_COUNT": "10",
                # Every message's spans shown (in Azure, plain successes are rate-limited).
                "TRACE_SUCCESSES_PER_SECOND": "all",
                # Never contacted: everything sent goes to the local queues below.
                "ServiceBusConnection__fullyQualifiedNamespace": "demo.servicebus.windows.net",
            }
        )
        sys.path.insert(0, os.getcwd())
        # The children queue (a date range's child requests come back from it as new
        # deliveries to the session trigger) and the senders' reply queue, in place of Service
        # Bus.
        children_queue, reply_queue = LoopbackQueue(), LocalReplyQueue(REPLY_QUEUE)
        send_locally(
            SenderPool(
                lambda entity: (
                    children_queue if entity == CHILD_QUEUE else reply_queue.sender_for(entity)
                )
            )
        )
        function_app = importlib.import_module("function_app")
        with settlement_host() as (service, actions):
            rows = asyncio.run(_invoke_all(function_app, actions, graph, children_queue))
        _print_table(rows, service, settlement_log.by_message)
        _print_ranges(rows, range_log.by_message)
        _print_replies(rows, reply_queue.session(REPLY_SESSION))
        for provider in providers:
            provider.shutdown()
        print(
            f"\nidentity endpoint: {identity.requests} token request(s) for {len(rows)} messages; "
            f"Graph simulator: {len(graph.state.calls)} call(s) on "
            f"{len({c.connection for c in graph.state.calls})} connection(s)."
        )
    return 0


def _print_ranges(rows: list[tuple], logged: dict) -> None:
    print("\nDate ranges (the function's log line for each):")
    for number, (_, message, _, _) in enumerate(rows, start=1):
        fields = logged.get(message.message_id)
        if fields:
            skipped = ", ".join(f"{k}={v}" for k, v in fields["skipped"].items()) or "none"
            print(
                f"  #{number} {fields['reason']}: listed {fields['listed']}, selected "
                f"{fields['selected']} ({', '.join(fields['event_ids'])}); skipped {skipped}; "
                f"{len(fields['child_message_ids'])} child request(s) sent"
            )


def _print_table(rows: list[tuple], service, logged: dict) -> None:
    header = ("#", "scenario", "Graph answered", "settlement", "reason", "attempts")
    table = [header]
    descriptions = []
    for number, (scenario, message, failure, calls) in enumerate(rows, start=1):
        statuses = [str(c.status) for c in calls]
        graph_text = " → ".join(statuses) if statuses else "(not called)"
        settled = service.settled(message)
        action, _, description = settled if settled else ("none", None, failure)
        fields = logged.get(message.message_id, {})
        table.append(
            (
                str(number),
                scenario.title,
                graph_text,
                action,
                fields.get("reason", "-"),
                str(fields.get("attempts", "-")),
            )
        )
        if description:
            descriptions.append(f"  #{number}: {description}")
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for index, row in enumerate(table):
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
        if index == 0:
            print("  ".join("-" * width for width in widths))
    print("\nDead-letter descriptions (what an operator sees in the dead-letter queue):")
    print("\n".join(descriptions))


def _print_replies(rows: list[tuple], events: list[dict]) -> None:
    """What each sender got back on the reply queue (session `demo-run`)."""
    by_request = {event["data"]["requestMessageId"]: event for event in events}
    numbers = {message.message_id: number for number, (_, message, *_) in enumerate(rows, 1)}
    print(f"\nReplies on {REPLY_QUEUE} (session {REPLY_SESSION}), what each sender sees:")
    for number, (_, message, *_) in enumerate(rows, start=1):
        event = by_request.get(message.message_id)
        if event is None:
            print(f"  #{number}: (no reply: still in progress)")
            continue
        data = event["data"]
        details = [f"reason={data['reason']}"]
        if "graphStatus" in data:
            details.append(f"graphStatus={data['graphStatus']}")
        details.append(f"attempts={data['attempts']}")
        if "events" in data:
            details.append(f"events={len(data['events'])}")
            details.append(f"children={len(data['childMessageIds'])}")
        if "parentMessageId" in data:
            details.append(f"parent=#{numbers.get(data['parentMessageId'], '?')}")
        print(f"  #{number}: {data['outcome']:<16} {' '.join(details)}  reply id {event['id']}")


if __name__ == "__main__":
    raise SystemExit(main())
